package web

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocloud.dev/gcerrors"
	"modernc.org/sqlite"
)

// How long a client is told to wait before retrying, in seconds: an engine
// that is down usually comes back (or fails over) within seconds; a full
// disk needs someone to free space.
const (
	unavailableRetryAfter = "5"
	noSpaceRetryAfter     = "30"
)

// outage says why a dependency cannot serve a request right now.
type outage int

const (
	notOutage   outage = iota
	unreachable        // refused, reset, timed out, I/O error, busy
	noSpace            // the disk or quota is full
)

// classifyOutage tells an error that means "a dependency (the database,
// the blob store, the queue or the disk under them) is unavailable right
// now" from one that means "our bug". The first deserves a 503 with
// Retry-After, because retrying the same request later will work; the
// second stays a 500. It looks at the error's types and codes, never its
// text: syscall errnos of the network and the file system, net.Error,
// context deadlines, database/sql's connection errors, PostgreSQL's
// connection, resource and operator-intervention classes, SQLite's busy,
// I/O and full codes, NATS's connection errors, S3 5xx answers and
// gocloud's ResourceExhausted and DeadlineExceeded.
func classifyOutage(err error) outage {
	if err == nil {
		return notOutage
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return noSpace
	}
	var sqe *sqlite.Error
	if errors.As(err, &sqe) {
		switch sqe.Code() & 0xff { // the primary result code
		case 13: // SQLITE_FULL
			return noSpace
		case 5, 6, 7, 8, 10, 14: // BUSY, LOCKED, NOMEM, READONLY, IOERR, CANTOPEN
			return unreachable
		}
		return notOutage
	}
	var pge *pgconn.PgError
	if errors.As(err, &pge) {
		switch {
		case pge.Code == "53100": // disk_full
			return noSpace
		case strings.HasPrefix(pge.Code, "08"), // connection exception
			strings.HasPrefix(pge.Code, "53"),  // insufficient resources
			strings.HasPrefix(pge.Code, "57P"), // operator intervention: shutdown, cannot connect now
			strings.HasPrefix(pge.Code, "58"):  // system error (I/O)
			return unreachable
		}
		return notOutage
	}
	for _, errno := range []syscall.Errno{
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN,
		syscall.EIO, syscall.EROFS, syscall.EACCES, syscall.EPERM, syscall.EMFILE, syscall.ENFILE,
	} {
		if errors.Is(err, errno) {
			return unreachable
		}
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	var status interface{ HTTPStatusCode() int }
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, driver.ErrBadConn),
		errors.As(err, &netErr),
		errors.As(err, &connectErr),
		pgconn.Timeout(err),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrNoServers),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.As(err, &status) && status.HTTPStatusCode() >= 500:
		return unreachable
	}
	switch gcerrors.Code(err) {
	case gcerrors.ResourceExhausted, gcerrors.DeadlineExceeded:
		return unreachable
	}
	return notOutage
}

// unavailableErr returns the problem to answer for err when err means a
// dependency is unavailable (see classifyOutage): 503 with Retry-After and
// a detail that says what failed and that a retry is safe. It returns nil
// for any other error.
func unavailableErr(what, requestID string, err error) error {
	switch classifyOutage(err) {
	case noSpace:
		return retryAfter(huma.NewError(http.StatusServiceUnavailable,
			"storage is full while "+what+"; retry the same request once space is freed — uploads are idempotent (request id "+requestID+")"),
			noSpaceRetryAfter)
	case unreachable:
		return retryAfter(huma.NewError(http.StatusServiceUnavailable,
			"a backing service (database, blob store or queue) is unavailable while "+what+"; retry the same request shortly — uploads are idempotent and nothing accepted is lost (request id "+requestID+")"),
			unavailableRetryAfter)
	}
	return nil
}
