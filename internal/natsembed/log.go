package natsembed

import (
	"context"
	"fmt"
	"log/slog"
)

// slogAdapter makes a *slog.Logger satisfy server.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a *slogAdapter) log(level slog.Level, format string, v []any) {
	if !a.l.Enabled(context.Background(), level) {
		return
	}
	a.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

// Noticef logs at debug level: the embedded server's start-up banner and
// notices are noise to someone running glimpse serve; warnings and errors
// still show.
func (a *slogAdapter) Noticef(format string, v ...any) { a.log(slog.LevelDebug, format, v) }

// Warnf logs at warn level.
func (a *slogAdapter) Warnf(format string, v ...any) { a.log(slog.LevelWarn, format, v) }

// Fatalf logs at error level; the server decides what to do next.
func (a *slogAdapter) Fatalf(format string, v ...any) { a.log(slog.LevelError, format, v) }

// Errorf logs at error level.
func (a *slogAdapter) Errorf(format string, v ...any) { a.log(slog.LevelError, format, v) }

// Debugf logs at debug level.
func (a *slogAdapter) Debugf(format string, v ...any) { a.log(slog.LevelDebug, format, v) }

// Tracef logs below debug level.
func (a *slogAdapter) Tracef(format string, v ...any) { a.log(slog.LevelDebug-4, format, v) }
