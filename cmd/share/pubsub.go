package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/api"
)

func pubsubCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pubsub",
		Short: "Publish and subscribe to topics (gossipsub, kubo's ipfs pubsub): pub, sub, ls, peers",
		Long: `pubsub sends short messages to every node subscribed to a topic, over
gossipsub v1.1 (the protocol of kubo's 'ipfs pubsub'; on network ipfs the
two exchange messages). Every message is signed by its author and checked
by every node that forwards it. The commands need a running daemon
(config Pubsub.Enabled, on by default).`,
		Example: "  share pubsub sub chat &\n  share pubsub pub chat 'hello'",
	}
	cmd.AddCommand(pubsubPubCmd(g), pubsubSubCmd(g), pubsubLsCmd(g), pubsubPeersCmd(g))
	return cmd
}

func pubsubPubCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pub TOPIC DATA",
		Short: "Publish DATA (or standard input, with -) on TOPIC",
		Long: `pub publishes one message of at most about 1 MiB on TOPIC: DATA as
given, or with - all of standard input. Nodes subscribed to TOPIC receive
it within a second or so; a node that is not subscribed does not store it.`,
		Example: "  share pubsub pub chat 'hello'\n  date | share pubsub pub chat -",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data io.Reader = strings.NewReader(args[1])
			if args[1] == "-" {
				data = os.Stdin
			}
			c, err := daemonClient()
			if err != nil {
				return err
			}
			defer c.Close()
			return c.PubsubPublish(cmd.Context(), args[0], data)
		},
	}
}

func pubsubSubCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "sub TOPIC...",
		Short: "Print the messages published on TOPIC (or several), one a line, until interrupted",
		Long: `sub subscribes the daemon to TOPIC and prints each message's data on a
line of its own (Go-quoted if it holds a newline or bytes that are not
printable text). With --json each line is {"From","Seqno","Data","Topic"},
Data in base64. With several topics, one stream carries all of them (see
Topic in --json). The daemon stays subscribed while sub runs.

Delivery is best effort: if sub (or what reads its output) is slower than
a burst, the daemon's queue for it overflows and the messages that did
not fit are missed; sub says so on standard error ("N messages
dropped") rather than leave a silent gap.`,
		Example: "  share pubsub sub chat\n  share pubsub sub --json chat news | jq -r .Data | base64 -d",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemonClient()
			if err != nil {
				return err
			}
			defer c.Close()
			return c.PubsubSubscribeTopics(cmd.Context(), args, func(m api.MessageJSON) {
				if g.json {
					printJSON(g.stdout, m)
					return
				}
				fmt.Fprintln(g.stdout, messageLine(m.Data))
			}, func(n int64) {
				fmt.Fprintln(g.stderr, droppedLine(n))
			})
		},
	}
}

// droppedLine is sub's word of a gap: n messages the daemon could not
// queue for this reader.
func droppedLine(n int64) string {
	if n == 1 {
		return "share: 1 message dropped: this reader fell behind the topic"
	}
	return fmt.Sprintf("share: %d messages dropped: this reader fell behind the topic", n)
}

// messageLine is a message's data as one line of sub's output.
func messageLine(data []byte) string {
	s := string(data)
	if bytes.HasPrefix(data, []byte(`"`)) || !printable(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func pubsubLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List the topics the daemon subscribes to",
		Example: "  share pubsub ls",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemonClient()
			if err != nil {
				return err
			}
			defer c.Close()
			topics, err := c.PubsubTopics(cmd.Context())
			if err != nil {
				return err
			}
			return printList(g, topics, "Topic")
		},
	}
}

func pubsubPeersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "peers [TOPIC]",
		Short:   "List the pubsub peers subscribed to TOPIC (all pubsub peers without one)",
		Example: "  share pubsub peers chat",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := daemonClient()
			if err != nil {
				return err
			}
			defer c.Close()
			topic := ""
			if len(args) == 1 {
				topic = args[0]
			}
			ids, err := c.PubsubPeers(cmd.Context(), topic)
			if err != nil {
				return err
			}
			return printList(g, ids, "ID")
		},
	}
}

// printList prints one item a line, or with --json one {key: item} a line.
func printList(g *globals, items []string, key string) error {
	for _, it := range items {
		if g.json {
			if err := printJSON(g.stdout, map[string]string{key: it}); err != nil {
				return err
			}
			continue
		}
		if g.quiet {
			fmt.Fprintln(g.stdout, it)
			continue
		}
		fmt.Fprintln(g.stdout, displayName(it))
	}
	return nil
}
