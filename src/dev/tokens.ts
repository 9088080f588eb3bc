import { SignJWT } from 'jose';
import type { Role } from '../domain/principal';

export interface UserClaims {
  sub: string;
  orgId: string;
  role: Role;
  email?: string;
  emailVerified?: boolean;
}

/** An HS256 user token as a backoffice identity provider would issue it (dev mode, tests, examples). */
export function mintUserToken(secret: string, c: UserClaims, ttl: string | number = '1h'): Promise<string> {
  return new SignJWT({ org_id: c.orgId, role: c.role, email: c.email, email_verified: c.emailVerified ?? false })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(c.sub)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(new TextEncoder().encode(secret));
}
