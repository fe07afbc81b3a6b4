import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { Org } from './org.entity';
import { User } from './user.entity';

export type PolicyStatus = 'draft' | 'active' | 'archived';

/** One version of an org's Trust Level policy: draft → active → archived. */
@Entity({ name: 'policies' })
@Index('policies_org_version_key', ['orgId', 'version'], { unique: true })
@Index('policies_one_active_per_org', ['orgId'], { unique: true, where: `"status" = 'active'` })
export class PolicyVersion {
  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @ManyToOne(() => User, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'author_id' })
  author?: User;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'int' })
  version!: number;

  @Column({ type: 'varchar', length: 16 })
  status!: PolicyStatus;

  @Column({ type: 'jsonb' })
  document!: Record<string, unknown>;

  @Column({ type: 'varchar', length: 1000, default: '' })
  note!: string;

  @Index('policies_author_id_idx')
  @Column({ name: 'author_id', type: 'uuid' })
  authorId!: string;

  /** The version this draft started from. */
  @Column({ name: 'based_on', type: 'uuid', nullable: true })
  basedOn!: string | null;

  @Column({ name: 'activated_at', type: 'timestamptz', nullable: true })
  activatedAt!: Date | null;

  @Column({ name: 'activated_by', type: 'uuid', nullable: true })
  activatedBy!: string | null;

  @Column({ name: 'archived_at', type: 'timestamptz', nullable: true })
  archivedAt!: Date | null;

  /** Six months after activation: the seed policy's review cadence. */
  @Column({ name: 'review_due_at', type: 'timestamptz', nullable: true })
  reviewDueAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
