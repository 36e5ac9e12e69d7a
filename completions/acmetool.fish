# fish completion for acmetool. Install as ~/.config/fish/completions/acmetool.fish
# (or in a vendor_completions.d directory).

set -l commands obtain renew revoke account certs ca trust untrust qualify fmt validate adapt serve version
set -l ca_commands init status issue rotate export
set -l account_commands register show update rollover deactivate

# True when the command line so far holds acmetool's command $argv[1] and, if given, the
# nested subcommand $argv[2].
function __acmetool_using
    __fish_seen_subcommand_from $argv[1]; or return 1
    set -q argv[2]; or return 0
    __fish_seen_subcommand_from $argv[2]
end

# Names of the stored certificates, from `acmetool certs` (honouring --storage on the line).
function __acmetool_stored_names
    set -l tokens (commandline -opc)
    set -l storage
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case '--storage=*'
                set storage --storage (string replace -- '--storage=' '' $tokens[$i])
            case --storage
                set -q tokens[(math $i + 1)]; and set storage --storage $tokens[(math $i + 1)]
        end
    end
    command acmetool $storage certs 2>/dev/null | string split -f1 \t
end

# Completes a comma-separated list of $argv (each value once), after the last comma.
function __acmetool_list
    set -l token (commandline -ct | string replace -r -- '^--[^=]*=' '')
    set -l prefix (string match -r -- '.*,' $token)
    set -l chosen (string split , -- $prefix)
    for value in $argv
        contains -- $value $chosen; or printf '%s%s\n' "$prefix" $value
    end
end

# The named ACME CAs of `obtain --ca` (an https:// directory URL is accepted too).
function __acmetool_acme_cas
    printf '%s\t%s\n' \
        letsencrypt "Let's Encrypt" \
        letsencrypt-staging "Let's Encrypt staging" \
        zerossl 'ZeroSSL (needs External Account Binding)'
end

complete -c acmetool -f

# Global options, accepted before or after any command.
complete -c acmetool -s h -l help -d 'Print help and exit'
complete -c acmetool -l version -d 'Print the version and exit'
complete -c acmetool -l storage -x -a '(__fish_complete_directories)' -d 'Storage directory'
complete -c acmetool -l json -d 'Print results as one JSON document'
complete -c acmetool -s v -l verbose -d 'More diagnostics on stderr (repeatable)'
complete -c acmetool -s q -l quiet -d 'Print errors only'

# Commands.
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a obtain -d 'Obtain certificates from ACME CAs, one per NAME (a,b for one)'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a renew -d 'Renew stored certificates that are due'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a revoke -d 'Revoke a stored certificate or a certificate file'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a account -d 'Manage ACME accounts'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a certs -d 'List the certificates in storage'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a ca -d 'Manage the local certificate authority'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a trust -d "Install the local CA's root into trust stores"
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a untrust -d "Remove the local CA's root from trust stores"
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a qualify -d 'Classify names: public, internal, ip or invalid'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a fmt -d 'Format a Caddyfile'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a validate -d 'Check a Caddyfile for errors'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a adapt -d 'Print the configuration a Caddyfile adapts to, as JSON'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a serve -d 'Serve the sites of a Caddyfile over automatic HTTPS'
complete -c acmetool -n "not __fish_seen_subcommand_from $commands" -a version -d 'Print the version'

# obtain
complete -c acmetool -n '__acmetool_using obtain' -l ca -x -a '(__acmetool_acme_cas)' -d 'ACME CA to use, repeatable for fallback'
complete -c acmetool -n '__acmetool_using obtain' -l ca-root -r -F -d "PEM roots to trust for the CA's own HTTPS"
complete -c acmetool -n '__acmetool_using obtain' -l email -x -d 'Account contact email'
complete -c acmetool -n '__acmetool_using obtain' -l eab-kid -x -d 'External Account Binding key identifier'
complete -c acmetool -n '__acmetool_using obtain' -l eab-hmac -x -d 'External Account Binding HMAC key (base64url)'
complete -c acmetool -n '__acmetool_using obtain' -l challenge -x -a '(__acmetool_list http-01 tls-alpn-01 dns-01)' -d 'Challenge types to use'
# DNS-01 flags, the same for obtain and renew.
for cmd in obtain renew
    complete -c acmetool -n "__acmetool_using $cmd" -l dns -x -a 'acme-dns cloudflare exec httpreq pdns rfc2136' -d 'DNS provider for dns-01'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-opt -x -d 'Provider option KEY=VALUE'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-zone -x -d 'Zone of the TXT records'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-override-domain -x -d 'Put the TXT record at this name'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-propagation-timeout -x -d 'How long to wait for the nameservers (default 2m)'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-propagation-interval -x -d 'Time between propagation checks (default 2s)'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-propagation-delay -x -d 'Wait this long before the first check'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-resolvers -x -d 'Resolvers for zone and nameserver lookups'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-nameserver-port -x -d 'Port the authoritative nameservers are asked on'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-ttl -x -d 'TTL of the TXT records (default 60s)'
    complete -c acmetool -n "__acmetool_using $cmd" -l dns-skip-propagation -d 'Do not wait for the nameservers'
end
complete -c acmetool -n '__acmetool_using obtain' -l http-port -x -d 'Port of the http-01 listener (default 80)'
complete -c acmetool -n '__acmetool_using obtain' -l tls-port -x -d 'Port of the tls-alpn-01 listener (default 443)'
complete -c acmetool -n '__acmetool_using obtain' -l webroot -x -a '(__fish_complete_directories)' -d 'Answer http-01 by writing into DIR/.well-known/acme-challenge/'
complete -c acmetool -n '__acmetool_using obtain' -l key-type -x -a 'p256 p384 rsa2048 rsa3072 rsa4096 ed25519' -d 'Certificate key type'
complete -c acmetool -n '__acmetool_using obtain' -l preferred-chain -x -d 'Chain whose top certificate has this issuer or subject CN'
complete -c acmetool -n '__acmetool_using obtain' -l profile -x -a 'classic shortlived tlsserver' -d 'ACME certificate profile, when the CA offers it'
complete -c acmetool -n '__acmetool_using obtain' -l out -x -a '(__fish_complete_directories)' -d 'Also write NAME.crt, NAME.key and NAME.json into DIR'
complete -c acmetool -n '__acmetool_using obtain' -l force -d 'Obtain even when a stored certificate is still good'
complete -c acmetool -n '__acmetool_using obtain' -l reuse-key -d "Keep the stored certificate's private key"

# renew
complete -c acmetool -n '__acmetool_using renew' -l all -d 'Renew every stored certificate that is due'
complete -c acmetool -n '__acmetool_using renew' -l force -d 'Renew even when the certificate is not due yet'
complete -c acmetool -n '__acmetool_using renew' -l days -x -d 'Renew when fewer than N days are left'
complete -c acmetool -n '__acmetool_using renew' -l ca -x -a '(__acmetool_acme_cas)' -d 'CA instead of the recorded one'
complete -c acmetool -n '__acmetool_using renew' -l ca-root -r -F -d "PEM roots to trust for the CA's own TLS"
complete -c acmetool -n '__acmetool_using renew' -l challenge -x -a '(__acmetool_list http-01 tls-alpn-01 dns-01)' -d 'Challenge types instead of the recorded one'
complete -c acmetool -n '__acmetool_using renew' -l http-port -x -d 'Port of the http-01 listener (default 80)'
complete -c acmetool -n '__acmetool_using renew' -l tls-port -x -d 'Port of the tls-alpn-01 listener (default 443)'
complete -c acmetool -n '__acmetool_using renew' -l webroot -x -a '(__fish_complete_directories)' -d 'Answer http-01 by writing into DIR/.well-known/acme-challenge/'
complete -c acmetool -n '__acmetool_using renew' -a '(__acmetool_stored_names)' -d 'Stored certificate'

# revoke
complete -c acmetool -n '__acmetool_using revoke' -l cert -r -F -d 'Certificate file (PEM) to revoke'
complete -c acmetool -n '__acmetool_using revoke' -l key -r -F -d "The certificate's private key, to sign with"
complete -c acmetool -n '__acmetool_using revoke' -l ca -x -a '(__acmetool_acme_cas)' -d 'CA of the certificate'
complete -c acmetool -n '__acmetool_using revoke' -l ca-root -r -F -d "PEM roots to trust for the CA's own HTTPS"
complete -c acmetool -n '__acmetool_using revoke' -l email -x -d 'Sign with the stored account of this email'
complete -c acmetool -n '__acmetool_using revoke' -l reason -x -a 'unspecified keyCompromise superseded cessationOfOperation' -d 'RFC 5280 revocation reason'
complete -c acmetool -n '__acmetool_using revoke' -a '(__acmetool_stored_names)' -d 'Stored certificate'

# account {register,show,update,rollover,deactivate}
complete -c acmetool -n "__acmetool_using account; and not __fish_seen_subcommand_from $account_commands" -a register -d 'Register an account (or find the existing one)'
complete -c acmetool -n "__acmetool_using account; and not __fish_seen_subcommand_from $account_commands" -a show -d 'Show the account as the CA has it'
complete -c acmetool -n "__acmetool_using account; and not __fish_seen_subcommand_from $account_commands" -a update -d "Replace the account's contacts at the CA"
complete -c acmetool -n "__acmetool_using account; and not __fish_seen_subcommand_from $account_commands" -a rollover -d 'Replace the account key'
complete -c acmetool -n "__acmetool_using account; and not __fish_seen_subcommand_from $account_commands" -a deactivate -d 'Deactivate the account at the CA, for good'
complete -c acmetool -n '__acmetool_using account' -l ca -x -a '(__acmetool_acme_cas)' -d 'CA of the account'
complete -c acmetool -n '__acmetool_using account' -l ca-root -r -F -d "PEM roots to trust for the CA's own HTTPS"
complete -c acmetool -n '__acmetool_using account' -l email -x -d 'Email of the stored account'
complete -c acmetool -n '__acmetool_using account register' -l eab-kid -x -d 'External Account Binding key identifier'
complete -c acmetool -n '__acmetool_using account register' -l eab-hmac -x -d 'External Account Binding HMAC key (base64url)'
complete -c acmetool -n "__acmetool_using account; and __fish_seen_subcommand_from register rollover" -l key-type -x -a 'p256 p384 rsa2048 rsa3072 rsa4096 ed25519' -d 'Type of a new account key'
complete -c acmetool -n '__acmetool_using account update' -l contact -x -d 'New contact, repeatable'

# certs
complete -c acmetool -n '__acmetool_using certs' -a '(__acmetool_stored_names)' -d 'Stored certificate'

# ca {init,status,issue,rotate,export}
complete -c acmetool -n "__acmetool_using ca; and not __fish_seen_subcommand_from $ca_commands" -a init -d 'Create the root and intermediate (never overwrites a root)'
complete -c acmetool -n "__acmetool_using ca; and not __fish_seen_subcommand_from $ca_commands" -a status -d 'Show fingerprints, validity and where the root is trusted'
complete -c acmetool -n "__acmetool_using ca; and not __fish_seen_subcommand_from $ca_commands" -a issue -d 'Issue a leaf certificate for NAME...'
complete -c acmetool -n "__acmetool_using ca; and not __fish_seen_subcommand_from $ca_commands" -a rotate -d 'Renew the intermediate now'
complete -c acmetool -n "__acmetool_using ca; and not __fish_seen_subcommand_from $ca_commands" -a export -d 'Write the root certificate'
complete -c acmetool -n '__acmetool_using ca' -l name -x -d 'Local CA to use (default: local)'
complete -c acmetool -n '__acmetool_using ca init' -l cn -x -d 'Root common name'
complete -c acmetool -n '__acmetool_using ca issue' -l lifetime -x -a '12h 24h 90m 168h' -d 'Leaf lifetime (Go duration)'
complete -c acmetool -n '__acmetool_using ca issue' -l out -x -a '(__fish_complete_directories)' -d 'Directory for the certificate, chain and key'
complete -c acmetool -n '__acmetool_using ca rotate' -l root -d 'Also replace the root'
complete -c acmetool -n '__acmetool_using ca export' -l format -x -a 'pem der p12' -d 'Output format'
complete -c acmetool -n '__acmetool_using ca export' -l out -r -F -d 'Output file (default: stdout)'

# trust, untrust
complete -c acmetool -n "__fish_seen_subcommand_from trust untrust" -l ca -x -d 'Local CA whose root to use'
complete -c acmetool -n "__fish_seen_subcommand_from trust untrust" -l store -x -a '(__acmetool_list system nss java)' -d 'Trust stores to change'
complete -c acmetool -n "__fish_seen_subcommand_from trust untrust" -l dry-run -d 'Print what would change and change nothing'

# fmt
complete -c acmetool -n '__acmetool_using fmt' -F -d 'Caddyfile (- for stdin)'
complete -c acmetool -n '__acmetool_using fmt' -l overwrite -d 'Write the result back to FILE'
complete -c acmetool -n '__acmetool_using fmt' -l diff -d 'Print a diff instead of the formatted file'

# validate, adapt, serve
complete -c acmetool -n "__fish_seen_subcommand_from validate adapt serve" -s c -l config -r -F -d 'Caddyfile'
complete -c acmetool -n "__fish_seen_subcommand_from validate adapt serve" -l envfile -r -F -d 'Load environment variables from FILE first'
complete -c acmetool -n '__acmetool_using serve' -l domain -x -a '(__fish_print_hostnames)' -d 'Serve files for this name with a managed certificate'
complete -c acmetool -n '__acmetool_using serve' -l root -x -a '(__fish_complete_directories)' -d 'Directory to serve in quick mode'
complete -c acmetool -n '__acmetool_using serve' -l browse -d 'List directories without an index file'
complete -c acmetool -n '__acmetool_using serve' -l listen -x -d 'Address to listen on'
complete -c acmetool -n '__acmetool_using serve' -l http-port -x -d 'Port for HTTP (redirects and http-01)'
complete -c acmetool -n '__acmetool_using serve' -l https-port -x -d 'Port for HTTPS'
complete -c acmetool -n '__acmetool_using serve' -l ca -x -a 'letsencrypt letsencrypt-staging zerossl' -d 'ACME CA for public names'
complete -c acmetool -n '__acmetool_using serve' -l ca-root -r -F -d "PEM roots to trust for the CA's own TLS"
complete -c acmetool -n '__acmetool_using serve' -l email -x -d 'Account email for the ACME CA'
complete -c acmetool -n '__acmetool_using serve' -l pidfile -r -F -d 'Where the server writes its PID'
complete -c acmetool -n '__acmetool_using serve' -l reload -d 'Check the Caddyfile and make the running server load it'
complete -c acmetool -n '__acmetool_using serve' -l trust -d 'Install the local CA root into the trust stores first'
complete -c acmetool -n '__acmetool_using serve' -l admin -r -d 'Serve /metrics and /health on this address'
complete -c acmetool -n '__acmetool_using serve' -l from -x -a '(__fish_print_hostnames)' -d 'Quick reverse proxy: the site address to receive traffic on'
complete -c acmetool -n '__acmetool_using serve' -l to -x -d 'Quick reverse proxy: upstream to proxy to (repeatable)'
complete -c acmetool -n '__acmetool_using serve' -l change-host-header -d "Send the upstream's host:port as Host"
complete -c acmetool -n '__acmetool_using serve' -l header-up -x -d 'Set a request field, "Field: value"'
complete -c acmetool -n '__acmetool_using serve' -l header-down -x -d 'Set a response field, "Field: value"'
complete -c acmetool -n '__acmetool_using serve' -l internal-certs -d 'Certificates from the local CA even for public names'
complete -c acmetool -n '__acmetool_using adapt' -l pretty -d 'Indent the JSON'
complete -c acmetool -n '__acmetool_using adapt' -l validate -d 'Also validate the result'
