/**
 * The page behind a Lambda function URL: its event (payload format 2.0) as a WebRequest, and a
 * WebResponse as the result a function URL returns. A function URL gives cookies apart from the
 * other headers, in `cookies`, both ways.
 */
import type { WebRequest, WebResponse } from "./app";

/** The fields of a function URL's event this reads (aws-lambda's LambdaFunctionURLEvent). */
export interface FunctionUrlEvent {
  rawPath?: string;
  rawQueryString?: string;
  headers?: Record<string, string | undefined>;
  cookies?: string[];
  requestContext?: { http?: { method?: string } };
}

export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  cookies?: string[];
  body: string;
}

export function webRequestOf(event: FunctionUrlEvent): WebRequest {
  const headers = event.headers ?? {};
  const cookie = event.cookies?.length ? event.cookies.join("; ") : headers.cookie;
  return {
    method: event.requestContext?.http?.method ?? "GET",
    path: event.rawPath ?? "/",
    query: new URLSearchParams(event.rawQueryString ?? ""),
    headers: { authorization: headers.authorization, cookie },
  };
}

export function functionUrlResultOf(response: WebResponse): FunctionUrlResult {
  const { "set-cookie": setCookie, ...headers } = response.headers;
  return {
    statusCode: response.status,
    headers,
    ...(setCookie ? { cookies: [setCookie] } : {}),
    body: response.body,
  };
}
