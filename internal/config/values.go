package config

// KeyValues lists every key of c as {"section.key", value}, in the keys
// table's order: ZLMediaKit's flat form of a config (getServerConfig, the
// body of the web hook on_server_started).
func KeyValues(c *Config) [][2]string {
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k.section + "." + k.name, k.get(c)})
	}
	return out
}
