import "../../lib/polyfills";
