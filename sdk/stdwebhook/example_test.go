package stdwebhook_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// A sender signs with its current secret (and the previous one during a
// rotation); the receiver verifies with the one it knows.
func Example() {
	secret, err := stdwebhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	body := []byte(`{"test": 2432232314}`)
	sent := time.Unix(1614265330, 0)

	h := stdwebhook.Headers("msg_p5jXN8AQM9LWM0D4loKWxJek", sent, body, secret)
	fmt.Println(h.Get(stdwebhook.HeaderSignature))

	// The receiver, 30 seconds later.
	req := &http.Request{Header: h}
	err = stdwebhook.Verify(req.Header, body, sent.Add(30*time.Second), stdwebhook.DefaultTolerance, secret)
	fmt.Println(err)

	// The same request replayed an hour later.
	err = stdwebhook.Verify(req.Header, body, sent.Add(time.Hour), stdwebhook.DefaultTolerance, secret)
	fmt.Println(err)
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// <nil>
	// stdwebhook: timestamp too old: 3600s before now, beyond the tolerance of 5m0s
}
