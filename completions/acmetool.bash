# bash completion for acmetool                             -*- shell-script -*-
# Install as /usr/share/bash-completion/completions/acmetool, or source it.

_acmetool() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    local commands="obtain renew revoke account certs ca trust untrust qualify fmt validate adapt serve version"
    local global_opts="-h --help --version --storage --json -v --verbose -q --quiet"
    # Options that take a value (the same in every command that has them).
    local value_opts=" --storage --email --key-type --challenge --out --cert --key --reason --contact"
    value_opts+=" --eab-kid --eab-hmac --name --cn --lifetime --format --ca --store -c --config --envfile"
    value_opts+=" --ca-root --http-port --tls-port --webroot --preferred-chain --profile --days"
    value_opts+=" --domain --root --listen --https-port --pidfile --admin --from --to --header-up --header-down"
    value_opts+=" --dns --dns-opt --dns-zone --dns-override-domain --dns-propagation-timeout --dns-propagation-interval --dns-propagation-delay --dns-resolvers --dns-nameserver-port --dns-ttl "

    # Find the command and nested subcommand, skipping options and their values.
    local cmd= sub= word skip=0 end_of_opts=0 i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == = ]]; then skip=1; continue; fi   # "--opt=value" split by COMP_WORDBREAKS
        if ((skip)); then skip=0; continue; fi
        if ((!end_of_opts)); then
            case $word in
                --) end_of_opts=1; continue ;;
                --*=*) continue ;;
                -*) [[ $value_opts == *" $word "* ]] && skip=1; continue ;;
            esac
        fi
        if [[ -z $cmd ]]; then
            cmd=$word
        elif [[ -z $sub && ($cmd == ca || $cmd == account) ]]; then
            sub=$word
        fi
    done

    # The option whose value is being completed, if any: "--opt VAL", "--opt=VAL", "--opt =VAL".
    local opt=
    if [[ $cur == --*=* ]]; then
        opt=${cur%%=*}; cur=${cur#*=}
    elif [[ $cur == = ]]; then
        opt=$prev; cur=
    elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
        opt=${COMP_WORDS[COMP_CWORD - 2]}
    elif ((skip)); then   # the previous word is an option that takes a value
        opt=$prev
    fi
    ((end_of_opts)) && opt=

    if [[ -n $opt && $value_opts == *" $opt "* ]]; then
        case $opt in
            --key-type) COMPREPLY=($(compgen -W "p256 p384 rsa2048 rsa3072 rsa4096 ed25519" -- "$cur")) ;;
            --reason) COMPREPLY=($(compgen -W "unspecified keyCompromise superseded cessationOfOperation" -- "$cur")) ;;
            --format) COMPREPLY=($(compgen -W "pem der p12" -- "$cur")) ;;
            --challenge) _acmetool_list "http-01 tls-alpn-01 dns-01" ;;
            --dns) COMPREPLY=($(compgen -W "acme-dns cloudflare exec httpreq pdns rfc2136" -- "$cur")) ;;
            --ca)   # obtain, renew, revoke, account: an ACME CA (or an https:// URL); trust, untrust: a local CA's name
                if [[ $cmd == obtain || $cmd == renew || $cmd == revoke || $cmd == account ]]; then
                    COMPREPLY=($(compgen -W "letsencrypt letsencrypt-staging zerossl" -- "$cur"))
                else
                    COMPREPLY=()
                fi ;;
            --store) _acmetool_list "system nss java" ;;
            --storage | --webroot) _acmetool_dirs ;;
            --out)
                if [[ $cmd == ca && $sub == export ]]; then _acmetool_files; else _acmetool_dirs; fi ;;
            --ca-root | --cert | --key | -c | --config | --envfile) _acmetool_files ;;
            *) COMPREPLY=() ;;   # free text: URL, email, names, keys, durations, ports, CNs
        esac
        return 0
    fi

    if [[ $cur == -* ]] && ((!end_of_opts)); then
        local opts=$global_opts
        case $cmd in
            obtain)
                opts+=" --ca --ca-root --email --eab-kid --eab-hmac --challenge --http-port --tls-port"
                opts+=" --webroot --key-type --preferred-chain --profile --out --force --reuse-key"
                opts+=" --dns --dns-opt --dns-zone --dns-override-domain --dns-propagation-timeout --dns-propagation-interval --dns-propagation-delay --dns-resolvers --dns-nameserver-port --dns-ttl --dns-skip-propagation" ;;
            renew)
                opts+=" --all --force --days --ca --ca-root --challenge --http-port --tls-port --webroot"
                opts+=" --dns --dns-opt --dns-zone --dns-override-domain --dns-propagation-timeout --dns-propagation-interval --dns-propagation-delay --dns-resolvers --dns-nameserver-port --dns-ttl --dns-skip-propagation" ;;
            revoke) opts+=" --cert --key --reason --ca --ca-root --email" ;;
            account)
                opts+=" --ca --ca-root --email"
                case $sub in
                    register) opts+=" --eab-kid --eab-hmac --key-type" ;;
                    update) opts+=" --contact" ;;
                    rollover) opts+=" --key-type" ;;
                esac ;;
            ca)
                opts+=" --name"
                case $sub in
                    init) opts+=" --cn" ;;
                    issue) opts+=" --lifetime --out" ;;
                    rotate) opts+=" --root" ;;
                    export) opts+=" --format --out" ;;
                esac ;;
            trust | untrust) opts+=" --ca --store --dry-run" ;;
            qualify) opts+=" --" ;;
            fmt) opts+=" --overwrite --diff -" ;;
            validate) opts+=" -c --config --envfile" ;;
            serve) opts+=" -c --config --envfile --domain --root --browse --listen --http-port --https-port --ca --ca-root --email --pidfile --reload --trust --admin --from --to --change-host-header --header-up --header-down --internal-certs" ;;
            adapt) opts+=" -c --config --envfile --pretty --validate" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi

    case $cmd in
        "") COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        ca) [[ -z $sub ]] && COMPREPLY=($(compgen -W "init status issue rotate export" -- "$cur")) ;;
        account) [[ -z $sub ]] && COMPREPLY=($(compgen -W "register show update rollover deactivate" -- "$cur")) ;;
        fmt) _acmetool_files ;;
        renew | revoke | certs) _acmetool_stored_names ;;
        *) COMPREPLY=() ;;   # NAME arguments: nothing to offer
    esac
    return 0
}

# Completes a comma-separated list of the words in $1 (each once), after the last comma of $cur.
_acmetool_list() {
    local prefix= word words=
    [[ $cur == *,* ]] && prefix=${cur%,*},
    for word in $1; do
        [[ ,$prefix == *,$word,* ]] || words+=" $word"
    done
    COMPREPLY=($(compgen -P "$prefix" -W "$words" -- "${cur##*,}"))
    compopt -o nospace 2>/dev/null
}

_acmetool_files() {
    local IFS=$'\n'
    COMPREPLY=($(compgen -f -- "$cur"))
    compopt -o filenames 2>/dev/null
}

_acmetool_dirs() {
    local IFS=$'\n'
    COMPREPLY=($(compgen -d -- "$cur"))
    compopt -o filenames 2>/dev/null
}

# Names of the certificates in storage (honours --storage given earlier on the line).
_acmetool_stored_names() {
    local storage=() i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --storage) [[ ${COMP_WORDS[i + 1]} == = ]] && storage=(--storage "${COMP_WORDS[i + 2]}") ||
                storage=(--storage "${COMP_WORDS[i + 1]}") ;;
            --storage=*) storage=(--storage "${COMP_WORDS[i]#*=}") ;;
        esac
    done
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${storage[@]}" certs 2>/dev/null | cut -f1)" -- "$cur"))
}

complete -F _acmetool acmetool
