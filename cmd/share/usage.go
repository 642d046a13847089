package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/share-p2p/share/errs"
)

// strictUsage makes the command line under c fail as a user expects: a
// group of commands (share, share pin, ...) given a name it does not know
// fails with a suggestion instead of printing its help and exiting 0 (cobra
// checks the names only at the root, and puts its suggestion on lines of
// their own); a wrong count of arguments or a bad flag names the command
// and shows its usage, on the one line errors get.
func strictUsage(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictUsage(sub)
	}
	switch {
	case c.HasSubCommands() && !c.Runnable():
		c.SuggestionsMinimumDistance = 2
		c.Args = unknownCommand
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	case c.Args != nil:
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError(cmd, err)
			}
			return nil
		}
	}
	if !c.HasParent() {
		c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError(cmd, err) })
		// A group runs now, only to show its help: its usage stays
		// "share pin [command]", without a "share pin [flags]" above.
		c.SetUsageTemplate(strings.Replace(c.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	}
}

// unknownCommand is the argument check of a group of commands: it takes
// no argument but the name of one of its commands, which cobra has already
// taken.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		for i := range s {
			s[i] = strconv.Quote(s[i])
		}
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return errs.Errorf(errs.Invalid, "%s (see '%s --help')", msg, cmd.CommandPath())
}

// usageError is err from the command line of cmd, naming the command (not
// the program: the CLI's line already starts with "share: ") and its usage.
func usageError(cmd *cobra.Command, err error) error {
	name, usage := cmd.CommandPath(), cmd.CommandPath()+" COMMAND"
	if !cmd.HasSubCommands() {
		usage = cmd.Parent().CommandPath() + " " + cmd.Use
	}
	prefix := ""
	if cmd.HasParent() {
		prefix = strings.TrimPrefix(name, cmd.Root().Name()+" ") + ": "
	}
	return errs.Errorf(errs.Invalid, "%s%w (usage: %s; see '%s --help')", prefix, err, usage, name)
}
