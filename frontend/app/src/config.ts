// Where the task manager is and which network it is on: from the page's
// origin and configuration, never hard-coded.
//
// Sources, later ones winning:
//   1. `config.json` next to the page (`icllm replica serve --frontend`
//      serves the one scripts/main.sh writes: {"network": "local",
//      "taskManager": "<id>"});
//   2. the `ic_env` cookie an asset canister sets (icp-cli deployments:
//      `PUBLIC_CANISTER_ID:task_manager` and the network's root key);
//   3. query parameters: `?canister=<id>&network=local|ic&host=<url>&ii=<url>`.
// A page on an IC domain (icp0.io, ic0.app, icp.io) is on mainnet.

import { safeGetCanisterEnv } from '@icp-sdk/core/agent/canister-env';

export interface AppConfig {
  /** `ic` (mainnet) or `local` (a replica on this machine). */
  network: 'ic' | 'local';
  /** The replica's URL the agent calls (the page's origin for a local replica). */
  host: string;
  /** The task manager's canister id (text). */
  taskManager: string;
  /** Internet Identity's URL, where the network has it (mainnet by default). */
  identityProvider: string | null;
  /** The network's root key, when the page was given it (asset canister cookie). */
  rootKey: Uint8Array | null;
}

export class ConfigError extends Error {}

interface ConfigFile {
  network?: string;
  host?: string;
  taskManager?: string;
  identityProvider?: string;
}

const MAINNET_HOST = 'https://icp-api.io';
const MAINNET_II = 'https://id.ai';
const IC_DOMAINS = ['.icp0.io', '.ic0.app', '.icp.io', '.raw.icp0.io'];

function onIcDomain(hostname: string): boolean {
  return IC_DOMAINS.some((d) => hostname.endsWith(d));
}

async function readConfigFile(): Promise<ConfigFile> {
  let response: Response;
  try {
    response = await fetch(new URL('config.json', window.location.href), { cache: 'no-cache' });
  } catch {
    return {};
  }
  if (response.status === 404) return {};
  if (!response.ok) {
    throw new ConfigError(`config.json could not be read (HTTP ${response.status}).`);
  }
  try {
    return (await response.json()) as ConfigFile;
  } catch {
    throw new ConfigError('config.json is not valid JSON.');
  }
}

export async function loadConfig(): Promise<AppConfig> {
  const file = await readConfigFile();
  const env = safeGetCanisterEnv<{ readonly ['PUBLIC_CANISTER_ID:task_manager']?: string }>();
  const params = new URLSearchParams(window.location.search);

  const networkName =
    params.get('network') ?? file.network ?? (onIcDomain(window.location.hostname) ? 'ic' : 'local');
  if (networkName !== 'ic' && networkName !== 'local') {
    throw new ConfigError(`Unknown network "${networkName}": use "ic" (mainnet) or "local".`);
  }
  const network = networkName;
  const host =
    params.get('host') ?? file.host ?? (network === 'ic' ? MAINNET_HOST : window.location.origin);
  const taskManager =
    params.get('canister') ?? env?.['PUBLIC_CANISTER_ID:task_manager'] ?? file.taskManager ?? '';
  if (!taskManager) {
    throw new ConfigError(
      'This page does not know which task manager to use: serve a config.json next to it ' +
        '({"network": "local", "taskManager": "<canister id>"}) or open it with ?canister=<canister id>.',
    );
  }
  const identityProvider =
    params.get('ii') ?? file.identityProvider ?? (network === 'ic' ? MAINNET_II : null);
  return {
    network,
    host,
    taskManager,
    identityProvider,
    rootKey: network === 'ic' ? null : (env?.IC_ROOT_KEY ?? null),
  };
}
