import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Singleton row for the one-time first-run setup. Reached only through narrow functions. */
@Entity({ name: 'setup_state' })
export class SetupState {
  @PrimaryColumn({ type: 'smallint' })
  id!: number;

  @Column({ name: 'token_hash', type: 'bytea', nullable: true })
  tokenHash!: Buffer | null;

  @Column({ name: 'token_expires_at', type: 'timestamptz', nullable: true })
  tokenExpiresAt!: Date | null;

  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true })
  completedAt!: Date | null;
}
