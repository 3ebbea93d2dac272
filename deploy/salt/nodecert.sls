# A certificate for the minion from the CFSSL CA, renewed only when due.
# Pillar (the auth key in an encrypted pillar):
#   nodecert:
#     auth_key: <hex>
#     config: /etc/nodecert/request-profile.json
#     ca: /etc/nodecert/ca.pem
#     csr: /etc/nodecert/csr.json
#     cert: /etc/ssl/node/node.pem
#     key: /etc/ssl/node/node-key.pem
#
# `stateful: True` makes Salt read the last line of the command's output ("changed=yes|no
# comment=..."), derived from nodecert's --report json, so the state shows changes only when
# nodecert issued or renewed. A failure (non-zero exit) fails the state with nodecert's message.
{% set nc = salt['pillar.get']('nodecert', {}) %}

nodecert-certificate:
  cmd.run:
    - name: |
        out=$(/usr/local/bin/nodecert gencert -config {{ nc.config }} -tls-remote-ca {{ nc.ca }} --cert {{ nc.cert }} --key {{ nc.key }} --renew-before 720h --retries 3 --report json {{ nc.csr }}) || exit $?
        case "$out" in
          *'"changed":true'*) echo "changed=yes comment='certificate issued or renewed'" ;;
          *) echo "changed=no comment='certificate up to date'" ;;
        esac
    - env:
      - NODECERT_AUTH_KEY: {{ nc.auth_key }}
    - stateful: True
    - python_shell: True
