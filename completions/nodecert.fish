# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nodecert_global_optspecs
    string join \n loglevel= quiet log-format= h/help V/version
end

function __fish_nodecert_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nodecert_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nodecert_using_subcommand
    set -l cmd (__fish_nodecert_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nodecert -n "__fish_nodecert_needs_command" -l loglevel -d 'Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal' -r
complete -c nodecert -n "__fish_nodecert_needs_command" -l log-format -d 'Log line format on stderr: `text` (`nodecert: LEVEL: message`) or `json` (one object per line)' -r -f -a "text\t''
json\t''"
complete -c nodecert -n "__fish_nodecert_needs_command" -l quiet -d 'Print only errors (the same as -loglevel 3)'
complete -c nodecert -n "__fish_nodecert_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nodecert -n "__fish_nodecert_needs_command" -s V -l version -d 'Print version'
complete -c nodecert -n "__fish_nodecert_needs_command" -f -a "gencert" -d 'Generate a key and CSR locally and have the CA sign it (cfssl gencert -remote | cfssljson)'
complete -c nodecert -n "__fish_nodecert_needs_command" -f -a "sign" -d 'Send an existing CSR to the CA and write the certificate (cfssl sign -remote)'
complete -c nodecert -n "__fish_nodecert_needs_command" -f -a "info" -d 'Fetch the CA certificate from the remote\'s info endpoint (cfssl info -remote)'
complete -c nodecert -n "__fish_nodecert_needs_command" -f -a "certinfo" -d 'Show a certificate: subject, issuer, SANs, serial, key, validity, days left'
complete -c nodecert -n "__fish_nodecert_needs_command" -f -a "sync" -d 'Run every *.json spec in a directory (certmgr-style), in parallel, one line per spec'
complete -c nodecert -n "__fish_nodecert_needs_command" -f -a "genkey" -d 'Generate a key and CSR locally, with no network (cfssl genkey)'
complete -c nodecert -n "__fish_nodecert_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l hostname -d 'Comma-separated SANs that replace csr.json\'s hosts (gencert also sends them to the CA)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l cn -d 'Common name, overriding csr.json\'s CN' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l config -d 'Request profile: signing.default / signing.profiles.NAME with auth_remote, auth_keys, remotes' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l profile -d 'Profile name sent to the CA and used to pick signing.profiles.NAME (empty: the CA\'s default)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l label -d 'Label selecting the CA root on a multirootca (empty: the server\'s default label)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l remote -d 'CA address(es), overriding the profile\'s: https://HOST:PORT or HOST:PORT, comma list = failover' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l tls-remote-ca -d 'Trust exactly this CA (PEM) for the CA\'s TLS certificate, instead of the system roots' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l mutual-tls-client-cert -d 'Client certificate (PEM) for mutual TLS; needs -mutual-tls-client-key' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l mutual-tls-client-key -d 'Client private key (PEM) for mutual TLS; needs -mutual-tls-client-cert' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l timeout -d 'Give up on a CA that has not answered within this time (e.g. 30s, 2m); connecting is capped at 10s' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l bare -d 'Write NAME.pem, NAME-key.pem and NAME.csr (as cfssljson -bare NAME), instead of JSON on stdout' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l cert -d 'Write the certificate to this path; needs --key' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l key -d 'Write the private key (mode 0600) to this path; needs --cert' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l csr -d 'Also write the CSR to this path (with --cert and --key)' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l signer -d 'Check csr.json against a built-in Kubernetes signer\'s rules before any key is made' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l crl -d 'CRL distribution point URL the CA is asked to put in the certificate (cfssl\'s -crl)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l renew-before -d 'Keep the existing pair when it matches the request and is valid for longer than this (e.g. 720h, 30d): no request is sent and its contents stay (its owner and modes are brought to --owner, --mode, --key-mode; a deleted CSR is written back). Without it, always issue' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l report -d 'Print the outcome: `json` is one object on stdout (changed, action, reason, cert, key, serial, not_after; error and exit_code when the --exec hook failed); `text` is one line on stderr' -r -f -a "json\t''
text\t''"
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l exec -d 'Run this command with `/bin/sh -c` after the files changed, with NODECERT_CERT and NODECERT_KEY set (absolute paths); on an unchanged pair only when an earlier run\'s hook did not succeed (it is owed until it does)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l exec-timeout -d 'Stop the --exec command (its whole process group: SIGTERM, SIGKILL 5 s later) if it runs longer than this' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l owner -d 'Owner of the written files: USER, USER:GROUP or :GROUP' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l mode -d 'Mode of the certificate and CSR files (octal; 0644 when not given). A pair that stays is set to it too, as to --owner' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l key-mode -d 'Mode of the private key (octal): 0600, or 0640 for a service group; never wider. A key of a pair that stays that is readable beyond it is narrowed to it, with a warning' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l jitter -d 'Wait a random time up to this long before contacting the CA, only when a certificate is due, so a fleet\'s cron minute does not hit the CA at once' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l retries -d 'Retry this many times when the CA is unreachable, times out or fails with 5xx (exponential backoff with jitter); the CA\'s refusals are never retried' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l lock-timeout -d 'How long to wait for another run on the same pair to finish before reporting busy (0: not at all)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l metrics-file -d 'Write Prometheus metrics (not-after, last success, last failure per certificate) to this file for node_exporter\'s textfile collector' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l loglevel -d 'Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l log-format -d 'Log line format on stderr: `text` (`nodecert: LEVEL: message`) or `json` (one object per line)' -r -f -a "text\t''
json\t''"
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l allow-plaintext -d 'Allow an http:// remote. What is sent can then be read, and what comes back replaced, on the way; a warning is printed'
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l force -d 'Issue a new certificate even when the existing pair could stay'
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l reuse-key -d 'Keep the existing private key and send a new CSR for it (one that cannot be reused fails)'
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -l quiet -d 'Print only errors (the same as -loglevel 3)'
complete -c nodecert -n "__fish_nodecert_using_subcommand gencert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l csr -d 'The CSR, as cfssl sign spells it (-csr FILE), instead of CSRPEM' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l hostname -d 'Comma-separated SANs sent to the CA, replacing the CSR\'s' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l config -d 'Request profile: signing.default / signing.profiles.NAME with auth_remote, auth_keys, remotes' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l profile -d 'Profile name sent to the CA and used to pick signing.profiles.NAME (empty: the CA\'s default)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l label -d 'Label selecting the CA root on a multirootca (empty: the server\'s default label)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l remote -d 'CA address(es), overriding the profile\'s: https://HOST:PORT or HOST:PORT, comma list = failover' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l tls-remote-ca -d 'Trust exactly this CA (PEM) for the CA\'s TLS certificate, instead of the system roots' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l mutual-tls-client-cert -d 'Client certificate (PEM) for mutual TLS; needs -mutual-tls-client-key' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l mutual-tls-client-key -d 'Client private key (PEM) for mutual TLS; needs -mutual-tls-client-cert' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l timeout -d 'Give up on a CA that has not answered within this time (e.g. 30s, 2m); connecting is capped at 10s' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l bare -d 'Write NAME.pem instead of cfssl\'s JSON {"cert","csr"} on stdout' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l cert -d 'Write the certificate to this path; not over the certificate of a working pair (its key beside it as X-key.pem for X.pem, X.key for X.crt) for another key' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l lock-timeout -d 'How long to wait for a run renewing the same pair to finish before reporting busy (0: not at all)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l loglevel -d 'Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l log-format -d 'Log line format on stderr: `text` (`nodecert: LEVEL: message`) or `json` (one object per line)' -r -f -a "text\t''
json\t''"
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l allow-plaintext -d 'Allow an http:// remote. What is sent can then be read, and what comes back replaced, on the way; a warning is printed'
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -l quiet -d 'Print only errors (the same as -loglevel 3)'
complete -c nodecert -n "__fish_nodecert_using_subcommand sign" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l config -d 'Request profile: signing.default / signing.profiles.NAME with auth_remote, auth_keys, remotes' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l profile -d 'Profile name sent to the CA and used to pick signing.profiles.NAME (empty: the CA\'s default)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l label -d 'Label selecting the CA root on a multirootca (empty: the server\'s default label)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l remote -d 'CA address(es), overriding the profile\'s: https://HOST:PORT or HOST:PORT, comma list = failover' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l tls-remote-ca -d 'Trust exactly this CA (PEM) for the CA\'s TLS certificate, instead of the system roots' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l mutual-tls-client-cert -d 'Client certificate (PEM) for mutual TLS; needs -mutual-tls-client-key' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l mutual-tls-client-key -d 'Client private key (PEM) for mutual TLS; needs -mutual-tls-client-cert' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l timeout -d 'Give up on a CA that has not answered within this time (e.g. 30s, 2m); connecting is capped at 10s' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l out -d 'Write the CA certificate to this file (mode 0644) instead of printing it' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l loglevel -d 'Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l log-format -d 'Log line format on stderr: `text` (`nodecert: LEVEL: message`) or `json` (one object per line)' -r -f -a "text\t''
json\t''"
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l allow-plaintext -d 'Allow an http:// remote. What is sent can then be read, and what comes back replaced, on the way; a warning is printed'
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l pem -d 'Print the CA certificate as PEM instead of cfssl info\'s JSON ({"certificate","usages","expiry"}, which `| cfssljson -bare ca` turns into ca.pem)'
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -l quiet -d 'Print only errors (the same as -loglevel 3)'
complete -c nodecert -n "__fish_nodecert_using_subcommand info" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nodecert -n "__fish_nodecert_using_subcommand certinfo" -l cert -d 'The certificate, as cfssl certinfo spells it (-cert FILE), instead of FILE' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand certinfo" -l check -d 'Exit 12 when the certificate expires within this time (e.g. 720h, 30d); 13 once expired' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand certinfo" -l loglevel -d 'Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand certinfo" -l log-format -d 'Log line format on stderr: `text` (`nodecert: LEVEL: message`) or `json` (one object per line)' -r -f -a "text\t''
json\t''"
complete -c nodecert -n "__fish_nodecert_using_subcommand certinfo" -l json -d 'Print one JSON object instead of text'
complete -c nodecert -n "__fish_nodecert_using_subcommand certinfo" -l quiet -d 'Print only errors (the same as -loglevel 3)'
complete -c nodecert -n "__fish_nodecert_using_subcommand certinfo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l renew-before -d 'Default for specs without renew_before: keep pairs valid for longer than this (with neither, a spec\'s pair is issued anew, and its exec run, on every sync)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l report -d '`json`: one array on stdout, one object per spec; default: one line per spec' -r -f -a "json\t''
text\t''"
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l timeout -d 'Per-request bound (e.g. 30s)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l retries -d 'Retries for retryable failures, per spec' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l jitter -d 'Random wait before contacting the CA, for each spec that is due: a point within one window of this length from the start of the run, however many specs wait' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l lock-timeout -d 'How long a spec waits for another run on its pair (0: not at all)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l exec-timeout -d 'Stop a spec\'s exec command (its whole process group: SIGTERM, SIGKILL 5 s later) if it runs longer than this' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l parallel -d 'Specs run at once (default: the number of CPUs)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l metrics-file -d 'Write Prometheus metrics for every spec\'s certificate to this file' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l loglevel -d 'Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l log-format -d 'Log line format on stderr: `text` (`nodecert: LEVEL: message`) or `json` (one object per line)' -r -f -a "text\t''
json\t''"
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l force -d 'Issue for every spec, even when its pair could stay'
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l allow-plaintext -d 'Allow http:// remotes (warns)'
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -l quiet -d 'Print only errors (the same as -loglevel 3)'
complete -c nodecert -n "__fish_nodecert_using_subcommand sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l hostname -d 'Comma-separated SANs that replace csr.json\'s hosts (gencert also sends them to the CA)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l cn -d 'Common name, overriding csr.json\'s CN' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l bare -d 'Write NAME-key.pem and NAME.csr, instead of JSON {"csr","key"} on stdout' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l key -d 'Write the private key (mode 0600) to this path; needs --csr' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l csr -d 'Write the CSR to this path; needs --key' -r -F
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l signer -d 'Check csr.json against a built-in Kubernetes signer\'s rules before any key is made (kubernetes.io/kube-apiserver-client-kubelet, kubernetes.io/kubelet-serving, kubernetes.io/kube-apiserver-client); also the manifest\'s signerName' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l k8s-name -d 'metadata.name of the manifest (default: the CN, made a valid object name)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l usages -d 'Comma-separated spec.usages (default: the signer\'s usual ones)' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l expiration -d 'spec.expirationSeconds (at least 10m, as the API server requires), e.g. 24h' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l loglevel -d 'Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal' -r
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l log-format -d 'Log line format on stderr: `text` (`nodecert: LEVEL: message`) or `json` (one object per line)' -r -f -a "text\t''
json\t''"
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l k8s-csr -d 'Also print a certificates.k8s.io/v1 CertificateSigningRequest manifest on stdout, for `kubectl apply -f -` (needs -bare or --key/--csr, and --signer)'
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -l quiet -d 'Print only errors (the same as -loglevel 3)'
complete -c nodecert -n "__fish_nodecert_using_subcommand genkey" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c nodecert -n "__fish_nodecert_using_subcommand help; and not __fish_seen_subcommand_from gencert sign info certinfo sync genkey help" -f -a "gencert" -d 'Generate a key and CSR locally and have the CA sign it (cfssl gencert -remote | cfssljson)'
complete -c nodecert -n "__fish_nodecert_using_subcommand help; and not __fish_seen_subcommand_from gencert sign info certinfo sync genkey help" -f -a "sign" -d 'Send an existing CSR to the CA and write the certificate (cfssl sign -remote)'
complete -c nodecert -n "__fish_nodecert_using_subcommand help; and not __fish_seen_subcommand_from gencert sign info certinfo sync genkey help" -f -a "info" -d 'Fetch the CA certificate from the remote\'s info endpoint (cfssl info -remote)'
complete -c nodecert -n "__fish_nodecert_using_subcommand help; and not __fish_seen_subcommand_from gencert sign info certinfo sync genkey help" -f -a "certinfo" -d 'Show a certificate: subject, issuer, SANs, serial, key, validity, days left'
complete -c nodecert -n "__fish_nodecert_using_subcommand help; and not __fish_seen_subcommand_from gencert sign info certinfo sync genkey help" -f -a "sync" -d 'Run every *.json spec in a directory (certmgr-style), in parallel, one line per spec'
complete -c nodecert -n "__fish_nodecert_using_subcommand help; and not __fish_seen_subcommand_from gencert sign info certinfo sync genkey help" -f -a "genkey" -d 'Generate a key and CSR locally, with no network (cfssl genkey)'
complete -c nodecert -n "__fish_nodecert_using_subcommand help; and not __fish_seen_subcommand_from gencert sign info certinfo sync genkey help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
