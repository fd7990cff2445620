#!/usr/bin/env node
// The `laas` command. TypeScript sources run through tsx, so the command needs no build step.
import { register } from "tsx/esm/api";

// The SDK warns that its 2027 releases will need Node 22; the locked versions run on Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
const { main } = await import("../lib/cli/main.ts");
const { exitQuietlyWhenReaderLeaves } = await import("../lib/cli/pipe.ts");
exitQuietlyWhenReaderLeaves(process.stdout, (code) => process.exit(code));
exitQuietlyWhenReaderLeaves(process.stderr, (code) => process.exit(code));
const { localStepHandlers } = await import("../lib/app/step-handlers.ts");
process.exit(await main(process.argv, { handlers: localStepHandlers() }));
