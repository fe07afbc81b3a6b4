import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { Org } from './org.entity';

/** A named workflow ("weekly exec brief") and the action types it uses; its classification is derived from the policy. */
@Entity({ name: 'workflows' })
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

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
