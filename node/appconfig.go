package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/viper"

	"github.com/agoranet/agora/internal/atomicfile"
)

// SnapshotSettings control the state-sync snapshots a node makes and serves.
type SnapshotSettings struct {
	// Interval makes a snapshot every Interval blocks; 0 makes none.
	Interval int64 `mapstructure:"interval"`
	// Keep is how many recent snapshots stay on disk.
	Keep int `mapstructure:"keep"`
}

// AppConfig is Agora's own node settings, kept in config/app.toml next to
// CometBFT's config.toml.
type AppConfig struct {
	Snapshot SnapshotSettings `mapstructure:"snapshot"`
}

// DefaultSnapshotSettings are written by 'agora node init': a snapshot
// every 1000 blocks, the last 2 kept.
func DefaultSnapshotSettings() SnapshotSettings { return SnapshotSettings{Interval: 1000, Keep: 2} }

// AppConfigPath is a home's app.toml.
func AppConfigPath(home string) string { return filepath.Join(home, "config", "app.toml") }

// SnapshotDir is where a home keeps its state-sync snapshots.
func SnapshotDir(home string) string { return filepath.Join(home, "data", "snapshots") }

// WriteAppConfig writes home's app.toml.
func WriteAppConfig(home string, c AppConfig) error {
	if c.Snapshot.Interval < 0 || c.Snapshot.Keep < 0 {
		return fmt.Errorf("snapshot interval %d and keep %d must not be negative", c.Snapshot.Interval, c.Snapshot.Keep)
	}
	body := fmt.Sprintf(`# Agora node settings (CometBFT's own are in config.toml).

[snapshot]
# Make a state-sync snapshot every interval blocks (0 = never). Joining
# nodes restore from these instead of replaying every block.
interval = %d
# How many recent snapshots to keep on disk.
keep = %d
`, c.Snapshot.Interval, c.Snapshot.Keep)
	return atomicfile.Replace(AppConfigPath(home), []byte(body), 0o600)
}

// LoadAppConfig reads home's app.toml; a home without one makes no
// snapshots.
func LoadAppConfig(home string) (AppConfig, error) {
	c := AppConfig{Snapshot: SnapshotSettings{Keep: DefaultSnapshotSettings().Keep}}
	p := AppConfigPath(home)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	v := viper.New()
	v.SetConfigFile(p)
	v.SetConfigType("toml")
	if err := v.ReadInConfig(); err != nil {
		return AppConfig{}, fmt.Errorf("read %s: %w", p, err)
	}
	if err := v.Unmarshal(&c); err != nil {
		return AppConfig{}, fmt.Errorf("parse %s: %w", p, err)
	}
	if c.Snapshot.Interval < 0 || c.Snapshot.Keep < 0 {
		return AppConfig{}, fmt.Errorf("%s: snapshot interval and keep must not be negative", p)
	}
	return c, nil
}
