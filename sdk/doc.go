// Package sdk is what a WiseHosting plugin author imports: the plugin kinds'
// interfaces, Serve, the handshake, and the gRPC plumbing that carries the
// kinds between the core and a plugin subprocess. It never imports the core.
//
// A plugin's main is a few lines:
//
//	func main() { sdk.Serve(myplugin.New()) }
//
// where the value embeds sdk.Base (info, config spec, configure) and
// implements its kind's method: Place for a Scheduler, Render for a Proxy,
// Deliver for an AlertSink, Plans for a PlanSource. The messages are the
// generated protobuf types of sdk/proto/pluginv1, so a plugin in another
// language speaks the same schema (schema/proto in the repository).
//
// Subpackages: hclspec (config schemas), event (the event catalogue), units
// (durations, sizes, bandwidth), hostname (DNS name validation), netguard
// (the address guard), outbound (what senders of outbound requests share: a
// guarded HTTP client, answers, headers, quoting and scrubbing, concurrency;
// outbound/outboundtest, a loopback receiver for their tests), wsproto
// (worker protocol), sdktest (the conformance kit), mock and plugintest (for
// unit tests).
package sdk
