// Command wh-sink-file is an example third-party WiseHosting alert sink: it
// appends every delivered event as one JSON line to a file. It imports only
// the WiseHosting sdk; the core starts it from a plugin block:
//
//	plugin "alerts" "file" {
//	  command = "/path/to/wh-sink-file"
//	  config {
//	    path = "/var/log/wisehosting/events.jsonl"
//	  }
//	}
package main

import "github.com/wisehosting/wisehosting/sdk"

func main() { sdk.Serve(New()) }
