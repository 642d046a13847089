// Package ticker runs periodic work, such as the expiry of the stores'
// records, until its context ends.
package ticker

import (
	"context"
	"time"
)

// Run calls f every interval, first one interval from now, until ctx
// ends. It returns when ctx ends; a call of f in progress finishes first.
func Run(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
