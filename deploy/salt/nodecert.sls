# A certificate for the minion from the CFSSL CA, renewed only when due.
#
# Install: copy to your file roots as nodecert/init.sls (or nodecert.sls), set the pillar, then
#   salt 'node*' state.apply nodecert
#
# Pillar (auth_key in an encrypted pillar; every other key has the default shown):
#   nodecert:
#     auth_key: <hex>                 # reaches nodecert as NODECERT_AUTH_KEY, never on a command line
#     bin: /usr/local/bin/nodecert
#     config: /etc/nodecert/request-profile.json   # its auth key should be "env:NODECERT_AUTH_KEY"
#     ca: /etc/nodecert/ca.pem
#     csr: /etc/nodecert/csr.json
#     cert: /etc/ssl/node/node.pem
#     key: /etc/ssl/node/node-key.pem
#     renew_before: 720h
#     csr_json: {}                    # when set, written to `csr` (cfssl's csr.json, as a mapping)
#     request_profile: {}             # when set, written to `config` (mode 0600)
#
# `stateful: True`: Salt reads the command's stdout as the state's result, and nodecert's
# --report json is exactly the JSON object Salt expects ({"changed": …, "action": …, …}). So the
# state shows changes only when nodecert issued or renewed (or set a kept pair's owner or
# modes, or wrote back its deleted CSR), and a failure (non-zero exit) fails
# the state with nodecert's one-line error as the comment. Restart what uses the certificate with
#   kubelet:
#     service.running:
#       - watch:
#         - cmd: nodecert-certificate
{% set nc = salt['pillar.get']('nodecert', {}) %}
{% set bin = nc.get('bin', '/usr/local/bin/nodecert') %}
{% set config = nc.get('config', '/etc/nodecert/request-profile.json') %}
{% set ca = nc.get('ca', '/etc/nodecert/ca.pem') %}
{% set csr = nc.get('csr', '/etc/nodecert/csr.json') %}
{% set cert = nc.get('cert', '/etc/ssl/node/node.pem') %}
{% set key = nc.get('key', '/etc/ssl/node/node-key.pem') %}

{% for dir in [salt['file.dirname'](cert), salt['file.dirname'](key)] | unique %}
nodecert-dir-{{ dir }}:
  file.directory:
    - name: {{ dir }}
    - makedirs: True
    - require_in:
      - cmd: nodecert-certificate
{% endfor %}

{% if nc.get('csr_json') %}
nodecert-csr-json:
  file.serialize:
    - name: {{ csr }}
    - serializer: json
    - dataset: {{ nc.csr_json | json }}
    - makedirs: True
    - mode: '0644'
    - require_in:
      - cmd: nodecert-certificate
{% endif %}

{% if nc.get('request_profile') %}
nodecert-request-profile:
  file.serialize:
    - name: {{ config }}
    - serializer: json
    - dataset: {{ nc.request_profile | json }}
    - makedirs: True
    - mode: '0600'
    - require_in:
      - cmd: nodecert-certificate
{% endif %}

nodecert-certificate:
  cmd.run:
    - name: >-
        {{ bin }} gencert -config {{ config }} -tls-remote-ca {{ ca }}
        --cert {{ cert }} --key {{ key }}
        --renew-before {{ nc.get('renew_before', '720h') }} --retries 3 --report json {{ csr }}
    - env:
      - NODECERT_AUTH_KEY: "{{ nc.get('auth_key', '') }}"
    - stateful: True
