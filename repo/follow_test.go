package repo

import (
	"testing"

	"github.com/share-p2p/share/errs"
)

func TestFollowConfig(t *testing.T) {
	const name = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{`[]`, true},
		{`[{"Name":"` + name + `","Dir":"/srv/site"}]`, true},
		{`[{"Name":"/ipns/` + name + `","Dir":"/srv/site","Keep":true}]`, true},
		{`[{"Name":"example.com","Dir":"/srv/site"}]`, false},
		{`[{"Name":"` + name + `","Dir":"site"}]`, false},
		{`[{"Name":"` + name + `","Dir":"/srv/a"},{"Name":"` + name + `","Dir":"/srv/a/"}]`, false},
	} {
		c, err := Default().Set("Follow", tc.value)
		if tc.ok && (err != nil || len(c.Follow) == 0 && tc.value != `[]`) {
			t.Errorf("Set Follow %s: %v", tc.value, err)
		}
		if !tc.ok && !errs.Is(errs.Invalid, err) {
			t.Errorf("Set Follow %s: %v, want kind invalid", tc.value, err)
		}
	}
}
