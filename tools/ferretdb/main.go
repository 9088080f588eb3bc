// Command ferretdb-launcher runs an embedded FerretDB (MongoDB wire protocol) for development,
// tests and benches. By default it stores data in SQLite files under -dir; with -postgresql-url it
// uses FerretDB's PostgreSQL handler instead, which pushes equality filters down to PostgreSQL
// (the SQLite handler reads the whole collection for every query).
//
// Usage: ferretdb-launcher -listen 127.0.0.1:PORT (-dir DIR | -postgresql-url postgres://...)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("dir", "", "SQLite data directory (required unless -postgresql-url is given)")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL connection string; selects the postgresql handler")
	flag.Parse()

	config := ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}}
	switch {
	case *pgURL != "" && *dir != "":
		fail(2, "-dir and -postgresql-url are exclusive")
	case *pgURL != "":
		config.Handler = "postgresql"
		config.PostgreSQLURL = *pgURL
	case *dir != "":
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			fail(1, err.Error())
		}
		config.Handler = "sqlite"
		config.SQLiteURL = "file:" + *dir + "/"
	default:
		fail(2, "-dir or -postgresql-url is required")
	}

	f, err := ferretdb.New(&config)
	if err != nil {
		fail(1, err.Error())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("ferretdb (%s) listening on %s\n", config.Handler, *listen)
	f.Run(ctx)
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, "ferretdb-launcher:", msg)
	os.Exit(code)
}
