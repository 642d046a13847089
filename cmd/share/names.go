package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/repo"
)

func nameCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "name",
		Short: "Publish and resolve IPNS names: names that follow new versions",
		Long: `A name is the PeerID of a key (the node's own, "self", or one made with
'share key gen'); its record, signed by the key, says which CID the name
points at. Publish a new record after every change and whoever has the
name finds the newest version: share get /ipns/NAME. Records are IPNS
records, so kubo resolves share's names and share resolves kubo's on
network ipfs.`,
		Example: "  share name publish bafyb4i...\n  share name resolve k51qzi5uqu5d...",
	}
	cmd.AddCommand(namePublishCmd(g), nameResolveCmd(g))
	return cmd
}

func namePublishCmd(g *globals) *cobra.Command {
	var opts node.PublishOptions
	cmd := &cobra.Command{
		Use:   "publish CID|/ipfs/PATH",
		Short: "Point a name at CID, in a signed record stored in the DHT",
		Long: `Publish signs a record that points the name of --key (default self, the
node's own) at CID or an /ipfs/ path, with a sequence number one more
than the last, stores it here and at the closest DHT peers (WAN and LAN).
The record is valid for --lifetime; a running daemon republishes its
names every 4 h (or halfway through a shorter lifetime), so they do not
expire while it runs. Resolvers may cache the record for --ttl.`,
		Example: "  share name publish bafyb4i...\n  share name publish --key blog --lifetime 24h /ipfs/bafyb4i.../site",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := dag.ParsePath(args[0])
			if err != nil {
				return err
			}
			return withNode(func(n node.API) error {
				rec, err := n.Publish(cmd.Context(), p, opts)
				if err != nil {
					return err
				}
				if g.quiet && !g.json {
					_, err := fmt.Fprintln(g.stdout, rec.Name)
					return err
				}
				return report(g, rec, "published %s: %s (sequence %d, valid until %s, %d DHT peers took it)",
					rec.Name, rec.Value, rec.Sequence, rec.Validity.Local().Format(time.DateTime), rec.Peers)
			})
		},
	}
	cmd.Flags().StringVarP(&opts.Key, "key", "k", repo.SelfKey, "the key whose name to publish ('share key ls')")
	cmd.Flags().DurationVar(&opts.Lifetime, "lifetime", node.DefaultLifetime, "how long the record is valid")
	cmd.Flags().DurationVar(&opts.TTL, "ttl", node.DefaultTTL, "how long resolvers may cache the record")
	return cmd
}

func nameResolveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resolve NAME",
		Short: "Print the path the newest valid record of NAME points at",
		Long: `Resolve finds the records of NAME here and in the DHT, keeps those whose
signature, key and validity check out, and prints the value of the one
with the highest sequence number. NAME is a name as publish and kubo
print it (k51...), a PeerID (12D3KooW...) or /ipns/NAME.`,
		Example: "  share name resolve k51qzi5uqu5d...\n  share get $(share name resolve k51qzi5uqu5d...)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := ipns.ParseName(args[0]); err != nil {
				return errs.E(errs.Invalid, err)
			}
			return withNode(func(n node.API) error {
				rec, err := n.ResolveName(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return report(g, rec, "%s", rec.Value)
			})
		},
	}
}

func keyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Make, list and remove the keys that names are of",
		Long: `Keys live in the repository, one file of mode 0600 per key under keys/.
Each key's name is a name to publish under (share name publish --key).
"self" is the node's own key: it cannot be made or removed.`,
		Example: "  share key gen blog\n  share key ls",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:     "gen NAME",
			Short:   "Make a new ed25519 key called NAME and print its IPNS name",
			Example: "  share key gen blog",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ks, err := keystore()
				if err != nil {
					return err
				}
				k, err := ks.Gen(args[0])
				if err != nil {
					return err
				}
				return report(g, keyJSON(k), "%s", ipns.Name(k.ID))
			},
		},
		&cobra.Command{
			Use:     "ls",
			Short:   "List the keys with their IPNS names",
			Example: "  share key ls",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				ks, err := keystore()
				if err != nil {
					return err
				}
				keys, err := ks.List()
				if err != nil {
					return err
				}
				for _, k := range keys {
					if err := report(g, keyJSON(k), "%s %s", ipns.Name(k.ID), k.Name); err != nil {
						return err
					}
				}
				return nil
			},
		},
		&cobra.Command{
			Use:     "rm NAME",
			Short:   "Remove the key NAME (its name can no longer be published)",
			Example: "  share key rm blog",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ks, err := keystore()
				if err != nil {
					return err
				}
				if err := ks.Remove(args[0]); err != nil {
					return err
				}
				return report(g, map[string]string{"Name": args[0]}, "removed key %s", args[0])
			},
		},
	)
	return cmd
}

// keystore returns the repository's keys, making the repository first if
// there is none (its identity is the key self).
func keystore() (*repo.Keys, error) {
	p, err := repoPath()
	if err != nil {
		return nil, err
	}
	if _, err := repo.Init(p); err != nil {
		return nil, err
	}
	return repo.KeysOf(p), nil
}

// keyJSON is a key as --json prints it.
func keyJSON(k repo.Key) map[string]string {
	return map[string]string{"Name": k.Name, "Id": ipns.Name(k.ID), "PeerID": k.ID.String()}
}
