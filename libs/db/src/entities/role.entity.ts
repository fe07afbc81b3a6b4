import { Org } from './org.entity';
import { Column, JoinColumn, ManyToOne, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** A permission rule of a custom role: a CASL rule over the API's typed actions and subjects. */
export interface StoredPermissionRule {
  action: string;
  subject: string;
  /** Restrict to records the caller owns (e.g. their own API keys). */
  own?: boolean;
}

/** An org-defined custom role. Built-in roles live in code, not here. */
@Entity({ name: 'roles' })
@Index('roles_org_key_key', ['orgId', 'key'], { unique: true })
export class Role {
  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'varchar', length: 63 })
  key!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 1000, default: '' })
  description!: string;

  @Column({ type: 'jsonb', default: () => "'[]'" })
  permissions!: StoredPermissionRule[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
