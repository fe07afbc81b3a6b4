import { User } from './user.entity';
import { Org } from './org.entity';
import { Column, JoinColumn, ManyToOne, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export type MembershipStatus = 'active' | 'suspended';

@Entity({ name: 'memberships' })
@Index('memberships_org_user_key', ['orgId', 'userId'], { unique: true })
@Index('memberships_scim_external_idx', ['orgId', 'scimExternalId'], { unique: true, where: `"scim_external_id" IS NOT NULL` })
export class Membership {
  /** The identity provider's id for this record (SCIM externalId), when provisioned by SCIM. */
  @Column({ name: 'scim_external_id', type: 'varchar', length: 255, nullable: true })
  scimExternalId!: string | null;

  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @ManyToOne(() => User, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Index('memberships_user_id_idx')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ type: 'varchar', length: 16, default: 'active' })
  status!: MembershipStatus;

  @Column({ name: 'suspended_at', type: 'timestamptz', nullable: true })
  suspendedAt!: Date | null;

  @Column({ name: 'suspended_reason', type: 'varchar', length: 500, nullable: true })
  suspendedReason!: string | null;

  /** Who suspended the member by hand (null: a sanction, the identity provider): lifting it takes someone who holds all they held. */
  @Column({ name: 'suspended_by', type: 'uuid', nullable: true })
  suspendedBy?: string | null;

  /** Wrong step-up codes in this org since `stepUpFailuresSince` (this membership's own limit: one org cannot lock the person's factor in another). */
  @Column({ name: 'step_up_failures', type: 'integer', default: 0 })
  stepUpFailures!: number;

  @Column({ name: 'step_up_failures_since', type: 'timestamptz', nullable: true })
  stepUpFailuresSince!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
