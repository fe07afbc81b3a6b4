import { User } from './user.entity';
import { Org } from './org.entity';
import { Column, JoinColumn, ManyToOne, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity({ name: 'api_keys' })
@Index('api_keys_org_user_idx', ['orgId', 'userId'])
export class ApiKey {
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

  /** The member the key acts as; its permissions never exceed theirs. */
  @Index('api_keys_user_id_idx')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ type: 'varchar', length: 200 })
  name!: string;

  /** The first characters of the key, shown so a person can recognise it. */
  @Column({ type: 'varchar', length: 16 })
  hint!: string;

  /** HMAC-SHA-256 of the key under the server-side pepper. */
  @Index('api_keys_key_hash_key', { unique: true })
  @Column({ name: 'key_hash', type: 'bytea' })
  keyHash!: Buffer;

  @Column({ type: 'text', array: true, default: () => "'{}'" })
  scopes!: string[];

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true })
  lastUsedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
