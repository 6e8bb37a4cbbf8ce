// Who the user is: Internet Identity where the network has it (mainnet), or
// a device key kept in this browser (the local replica, which has no
// Internet Identity).
//
// The device key is an Ed25519 key pair made once and kept in localStorage
// under DEVICE_KEY_STORAGE: the same principal every visit, until "Sign
// out" forgets it.

import type { Identity } from '@icp-sdk/core/agent';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { AuthClient } from '@icp-sdk/auth/client';

export const DEVICE_KEY_STORAGE = 'icllm.device-key.v1';

export type SignInMethod = 'device-key' | 'internet-identity';

export interface Session {
  identity: Identity;
  method: SignInMethod;
  signOut(): Promise<void>;
}

/** The device key of this browser, made on first use. */
export function deviceKeySession(): Session {
  const stored = localStorage.getItem(DEVICE_KEY_STORAGE);
  let identity: Ed25519KeyIdentity | null = null;
  if (stored) {
    try {
      identity = Ed25519KeyIdentity.fromJSON(stored);
    } catch {
      identity = null; // unreadable: make a new one
    }
  }
  if (!identity) {
    identity = Ed25519KeyIdentity.generate();
    localStorage.setItem(DEVICE_KEY_STORAGE, JSON.stringify(identity.toJSON()));
  }
  return {
    identity,
    method: 'device-key',
    async signOut() {
      localStorage.removeItem(DEVICE_KEY_STORAGE);
    },
  };
}

/** Whether this browser already holds a device key (the last session). */
export function hasDeviceKey(): boolean {
  return localStorage.getItem(DEVICE_KEY_STORAGE) !== null;
}

function authClient(identityProvider: string): AuthClient {
  return new AuthClient({ identityProvider });
}

/** The Internet Identity session this browser still holds, if any. */
export async function restoreInternetIdentity(identityProvider: string): Promise<Session | null> {
  const client = authClient(identityProvider);
  if (!client.isAuthenticated()) return null;
  return iiSession(client, await client.getIdentity());
}

/** Opens Internet Identity's window and waits for the user to sign in. */
export async function signInWithInternetIdentity(identityProvider: string): Promise<Session> {
  const client = authClient(identityProvider);
  const identity = await client.signIn();
  return iiSession(client, identity);
}

function iiSession(client: AuthClient, identity: Identity): Session {
  return {
    identity,
    method: 'internet-identity',
    async signOut() {
      await client.signOut();
    },
  };
}
