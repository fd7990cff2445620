/**
 * The status page and /metrics in the cloud, behind a Lambda function URL (serverless.yml `web`).
 * The URL itself lets anyone call it; pharos.yaml `web.token` (a secret-store reference in the
 * cloud's config) is what guards it, and without one it serves nothing.
 */

import { runtime } from "../../lib/app/runtime";
import { webAppFor } from "../../lib/app/web";
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
  const app = webAppFor(rt, { secureCookie: true });
  return functionUrlResultOf(await app(webRequestOf(event)));
}
