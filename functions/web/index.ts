/**
 * The status page and /metrics in the cloud, behind a Lambda function URL (serverless.yml `web`).
 * The URL itself lets anyone call it; pharos.yaml `web.token` (a secret-store reference in the
 * cloud's config) is what guards it, and without one it serves nothing.
 */

import { type Runtime, runtime } from "../../lib/app/runtime";
import { webAppFor } from "../../lib/app/web";
import type { WebApp } from "../../lib/web/app";
import {
  type FunctionUrlEvent,
  type FunctionUrlResult,
  functionUrlResultOf,
  webRequestOf,
} from "../../lib/web/lambda-url";
import {
  finishInvocation,
  installCloudRuntime,
  type LambdaContext,
  rememberInvocation,
} from "../cloud-runtime";

installCloudRuntime();

let built: { rt: Runtime; app: WebApp } | null = null;

export async function handler(
  event: FunctionUrlEvent,
  context?: LambdaContext,
): Promise<FunctionUrlResult> {
  rememberInvocation(context);
  try {
    return await answer(event);
  } finally {
    // Under `serverless invoke local` with LAAS_MODE=embedded: the store is let go.
    await finishInvocation();
  }
}

async function answer(event: FunctionUrlEvent): Promise<FunctionUrlResult> {
  const rt = await runtime();
  if (!rt.config.web?.token) {
    return {
      statusCode: 503,
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({
        error:
          "pharos.yaml has no web.token: the page is served in the cloud only behind a token " +
          "(give one as an ssm: or secretsmanager: reference)",
      }),
    };
  }
  // One app per runtime: a warm container keeps its FOG client and its one-second overview cache.
  if (built?.rt !== rt) built = { rt, app: webAppFor(rt, { secureCookie: true }) };
  return functionUrlResultOf(await built.app(webRequestOf(event)));
}
