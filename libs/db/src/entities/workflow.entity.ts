import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { type ModelTier, Org } from './org.entity';

/** A named workflow ("weekly exec brief") and the action types it uses; its classification is derived from the policy. */
@Entity({ name: 'workflows' })
@Check('workflows_model_tier_check', `"model_tier" IN ('quick', 'standard', 'complex')`)
@Check('workflows_allowed_groups_check', `"allowed_groups" IS NULL OR cardinality("allowed_groups") <= 50`)
@Index('workflows_org_key_key', ['orgId', 'key'], { unique: true })
export class Workflow {
  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  /** Referenced by policy rules scoped to this workflow. */
  @Column({ type: 'varchar', length: 80 })
  key!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 2000, default: '' })
  description!: string;

  @Column({ name: 'action_types', type: 'text', array: true, default: () => "'{}'" })
  actionTypes!: string[];

  /** The model tier of this workflow's tasks (null: the org's). */
  @Column({ name: 'model_tier', type: 'varchar', length: 16, nullable: true })
  modelTier!: ModelTier | null;

  /**
   * Who may run tasks under it: members of these groups (at most 50). NULL: every member; empty:
   * nobody (what it becomes when its only group is deleted). Its policy rules apply only to them.
   */
  @Column({ name: 'allowed_groups', type: 'uuid', array: true, nullable: true })
  allowedGroups!: string[] | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
