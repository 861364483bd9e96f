package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

func newKeysCmd(g *globals) *cobra.Command {
	var data, db string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (each key belongs to one tenant)",
		Long: `Every image belongs to a tenant, and an API key says which. Keys are shown once, when
created, and stored only as a SHA-256 digest. Send one as 'Authorization: Bearer KEY'
or 'X-API-Key: KEY'. A tenant name is ` + job.TenantRule + `.`,
		Example: `  glimpse keys create --tenant acme --name ci
  glimpse keys list
  glimpse keys revoke key_0123abcd`,
	}
	cmd.PersistentFlags().StringVar(&data, "data", "./data", "data directory of 'glimpse serve' (its SQLite store)")
	cmd.PersistentFlags().StringVar(&db, "db", "", "store URL instead of --data (sqlite://…)")
	open := func(ctx context.Context) (*store.DB, error) {
		dsn := db
		if dsn == "" {
			abs, err := filepath.Abs(data)
			if err != nil {
				return nil, err
			}
			dsn = "sqlite://" + filepath.Join(abs, "glimpse.db")
		}
		return store.Open(ctx, dsn)
	}

	var tenant, name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a key for a tenant and print it (once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenant == "" {
				return fmt.Errorf("--tenant is required")
			}
			s, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			secret, k, err := s.CreateKey(cmd.Context(), tenant, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, secret)
			fmt.Fprintf(g.stderr, "key %s for tenant %q created; it is shown only now\n", k.ID, k.Tenant)
			return nil
		},
	}
	create.Flags().StringVar(&tenant, "tenant", "", "tenant the key acts for (required)")
	create.Flags().StringVar(&name, "name", "", "a note to recognise the key by")

	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			keys, err := s.ListKeys(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTENANT\tNAME\tCREATED\tSTATE")
			for _, k := range keys {
				state := "active"
				if k.RevokedAt != nil {
					state = "revoked " + k.RevokedAt.Format(time.DateOnly)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, k.Name, k.CreatedAt.Format(time.DateTime), state)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant's keys")

	revoke := &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke a key; requests with it get 401 from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.RevokeKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "key %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
