import { User } from './user.entity';
import { Org } from './org.entity';
import { Column, JoinColumn, ManyToOne, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

@Entity({ name: 'groups' })
@Index('groups_org_name_key', ['orgId', 'name'], { unique: true })
@Index('groups_scim_external_idx', ['orgId', 'scimExternalId'], { unique: true, where: `"scim_external_id" IS NOT NULL` })
export class Group {
  /** The identity provider's id for this record (SCIM externalId), when provisioned by SCIM. */
  @Column({ name: 'scim_external_id', type: 'varchar', length: 255, nullable: true })
  scimExternalId!: string | null;

  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ type: 'varchar', length: 1000, default: '' })
  description!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

@Entity({ name: 'group_members' })
@Index('group_members_org_group_user_key', ['orgId', 'groupId', 'userId'], { unique: true })
export class GroupMember {
  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @ManyToOne(() => Group, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'group_id' })
  group?: Group;

  @ManyToOne(() => User, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Index('group_members_group_id_idx')
  @Column({ name: 'group_id', type: 'uuid' })
  groupId!: string;

  @Index('group_members_user_id_idx')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
