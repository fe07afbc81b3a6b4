import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { Org } from './org.entity';

/** Keeps audit content readable past retention: the whole org, or one user, over a time range. */
@Entity({ name: 'legal_holds' })
@Index('legal_holds_org_idx', ['orgId', 'releasedAt'])
export class LegalHold {
  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  /** null: every actor in the org. */
  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId!: string | null;

  @Column({ name: 'from_at', type: 'timestamptz' })
  fromAt!: Date;

  /** null: open-ended. */
  @Column({ name: 'until_at', type: 'timestamptz', nullable: true })
  untilAt!: Date | null;

  @Column({ type: 'varchar', length: 500 })
  reason!: string;

  @Column({ name: 'created_by', type: 'uuid' })
  createdBy!: string;

  @Column({ name: 'released_at', type: 'timestamptz', nullable: true })
  releasedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
