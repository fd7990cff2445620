#!/usr/bin/env node
// The `laas` command. TypeScript sources run through tsx, so the command needs no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../lib/cli/main.ts");
const { stepHandlers } = await import("../functions/steps.ts");
process.exit(await main(process.argv, { handlers: stepHandlers }));
