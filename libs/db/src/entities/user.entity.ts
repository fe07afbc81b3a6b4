import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** Users are global: one person, one sign-in. Membership and roles are per org. */
@Entity({ name: 'users' })
export class User {
  @PrimaryColumn('uuid')
  id!: string;

  /** Stored lower-cased. */
  @Index('users_email_key', { unique: true })
  @Column({ type: 'varchar', length: 254 })
  email!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ name: 'password_hash', type: 'varchar', length: 255, nullable: true })
  passwordHash!: string | null;

  /** TOTP secret sealed under STEWARD_MASTER_KEY (AAD: user id). */
  @Column({ name: 'totp_secret_sealed', type: 'text', nullable: true })
  totpSecretSealed!: string | null;

  @Column({ name: 'totp_enabled_at', type: 'timestamptz', nullable: true })
  totpEnabledAt!: Date | null;

  /** Last TOTP time step accepted, so a code cannot be replayed. */
  @Column({ name: 'totp_last_step', type: 'bigint', nullable: true })
  totpLastStep!: string | null;

  /** Wrong authenticator codes since `totpFailuresSince` (the account's own limit, whatever the address). */
  @Column({ name: 'totp_failures', type: 'integer', default: 0 })
  totpFailures!: number;

  @Column({ name: 'totp_failures_since', type: 'timestamptz', nullable: true })
  totpFailuresSince!: Date | null;

  /** Password attempts at sign-in since `passwordFailuresSince` not followed by a right one (the account's own limit, whatever the address). */
  @Column({ name: 'password_failures', type: 'integer', default: 0 })
  passwordFailures!: number;

  @Column({ name: 'password_failures_since', type: 'timestamptz', nullable: true })
  passwordFailuresSince!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
