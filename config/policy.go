package config

// PolicyRule is one policy rule in the YAML file.
type PolicyRule struct {
	Name   string `yaml:"name"`
	Bucket string `yaml:"bucket"`
	Prefix string `yaml:"prefix"`
	Mode   string `yaml:"mode"`
}

func (c *Config) validatePolicies(v *validator) {}
