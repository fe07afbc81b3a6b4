import { User } from './user.entity';
import { Org } from './org.entity';
import { Column, JoinColumn, ManyToOne, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'invitations' })
@Index('invitations_org_email_idx', ['orgId', 'email'])
export class Invitation {
  @ManyToOne(() => Org, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'org_id' })
  org?: Org;

  @ManyToOne(() => User, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'invited_by' })
  inviter?: User;

  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId!: string;

  @Column({ type: 'varchar', length: 254 })
  email!: string;

  @Column({ type: 'text', array: true, default: () => "'{}'" })
  roles!: string[];

  /** HMAC-SHA-256 of the invitation token under the pepper. */
  @Index('invitations_token_hash_key', { unique: true })
  @Column({ name: 'token_hash', type: 'bytea' })
  tokenHash!: Buffer;

  @Index('invitations_invited_by_idx')
  @Column({ name: 'invited_by', type: 'uuid' })
  invitedBy!: string;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'accepted_at', type: 'timestamptz', nullable: true })
  acceptedAt!: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
