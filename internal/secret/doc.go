// Package secret is ferry's encrypted store of named secrets, such as the
// access keys of an S3 endpoint, and the [Secret] type that holds a secret
// value in memory without letting it print.
//
// # Files
//
// The store lives in a configuration directory: $FERRY_CONFIG_DIR, else
// $XDG_CONFIG_HOME/ferry, else ~/.config/ferry (see [DefaultDir]). It holds
//
//	secrets.age   the whole store: one age file whose plaintext is JSON
//	identity.txt  the age X25519 identity the store is encrypted to
//	              (identity mode only; created on the first write)
//	secrets.lock  an empty file locked while the store is updated
//
// The directory is created 0700 and files 0600. Like ssh with a private key,
// ferry refuses to use the directory, the store or the identity when group
// or others have any permission on it, or when another user owns it.
// docs/secrets.md describes the format.
//
// # Modes
//
// The store file records nothing about how it is protected beyond what age
// writes in its header. The environment selects the mode:
//
//   - passphrase mode when FERRY_SECRETS_PASSPHRASE or
//     FERRY_SECRETS_PASSPHRASE_COMMAND is set (not empty): the store is
//     encrypted to an age scrypt recipient. The command is run with
//     "sh -c", no stdin, and its standard output, with trailing newlines
//     removed, is the passphrase. Setting both variables is an error.
//   - identity mode otherwise: the store is encrypted to identity.txt, which
//     the first write creates.
//
// Opening a store written in the other mode fails with an error that says
// which variable to set or unset; nothing is converted silently.
//
// # Rotation
//
// [Store.AWSCredentials] returns a provider that re-reads the store at most
// once a minute (when the credentials it handed out expire), so a secret
// rotated with "ferry secret set" reaches a running job within a minute.
package secret
