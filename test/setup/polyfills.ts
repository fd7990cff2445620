import "../../lib/polyfills";

// The SDK warns that its 2027 releases will need Node 22; the locked versions run on Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
