// Package config loads ferry's configuration file, config.yaml in the
// directory [Dir] names, which defines named remotes and flag defaults:
//
//	defaults:                      # any long flag of any command, by name
//	  concurrency: 64
//	  exclude: ["*.tmp", ".cache/"] # repeatable flags take a list
//	remotes:
//	  backup:
//	    endpoint: https://minio.example:9000
//	    region: eu-central-1
//	    secret: backup-keys        # or profile: NAME, not both
//	    ca_bundle: certs/minio-ca.pem
//	    allow_insecure_http: false
//
// A remote is used as a location "backup:bucket/prefix". A default applies
// to every command with that flag, under the command line and the flag's
// FERRY_* environment variable (package cli checks the names and values).
// The file is decoded strictly: an unknown field, a value of the wrong
// type, a duplicate key or an invalid value is an error that names the
// file and line ("config.yaml:7: ..."), never silently ignored.
package config
