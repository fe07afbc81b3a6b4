import { Role } from './role.entity';
import { User } from './user.entity';
import { Org } from './org.entity';
import { Column, JoinColumn, ManyToOne, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** One role held by one member: a built-in role key, or a custom role id. */
@Entity({ name: 'role_assignments' })
@Index('role_assignments_org_user_role_key', ['orgId', 'userId', 'role'], { unique: true })
export class RoleAssignment {
  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @ManyToOne(() => User, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @ManyToOne(() => Role, { onDelete: 'CASCADE', nullable: true })
  @JoinColumn({ name: 'custom_role_id' })
  customRole?: Role;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Index('role_assignments_user_id_idx')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  /** A built-in role key ("owner", "admin", ...) or "custom:<role id>". */
  @Column({ type: 'varchar', length: 80 })
  role!: string;

  @Index('role_assignments_custom_role_id_idx')
  @Column({ name: 'custom_role_id', type: 'uuid', nullable: true })
  customRoleId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
