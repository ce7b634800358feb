package agent

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk/worker"
)

// The sdk client is the agent's Client.
var _ Client = (*worker.Client)(nil)
var _ errorSource = (*worker.Client)(nil)

// NewClient builds the sdk/worker protocol client for o: it registers with
// o.APIKey, keeps its JWT fresh and reconnects by itself. The returned run
// func holds the connection until its context ends.
func NewClient(o *Options, version string, logger hclog.Logger) (Client, func(context.Context) error, error) {
	c, err := worker.New(worker.Config{
		CoreURL:      o.CoreURL,
		APIKey:       o.APIKey,
		Registration: o.Registration(version),
		Logger:       logger.Named("client"),
	})
	if err != nil {
		return nil, nil, err
	}
	return c, c.Run, nil
}
