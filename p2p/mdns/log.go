package mdns

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// loggerFactory passes pion's logs to slog at debug level: pion warns about
// every malformed packet it receives, which anyone on the LAN can send, so
// none of its messages may be louder than debug.
type loggerFactory struct{ l *slog.Logger }

func (f loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.l.With("scope", "pion/"+scope)}
}

type pionLogger struct{ l *slog.Logger }

func (p pionLogger) log(msg string) { p.l.Debug(msg) }

func (p pionLogger) logf(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...))
	}
}

func (p pionLogger) Trace(string)                      {}
func (p pionLogger) Tracef(string, ...any)             {}
func (p pionLogger) Debug(msg string)                  { p.log(msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(format, args...) }
func (p pionLogger) Info(msg string)                   { p.log(msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(format, args...) }
func (p pionLogger) Warn(msg string)                   { p.log(msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.logf(format, args...) }
func (p pionLogger) Error(msg string)                  { p.log(msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.logf(format, args...) }
