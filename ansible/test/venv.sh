# Sourced by the tests: the controller's virtual environment in
# target/ansible-venv, made from ansible/requirements.txt (the package
# registry only) and remade when that file changes. Sets $venv and PATH.
venv=$repo/target/ansible-venv
if ! "$venv/bin/ansible-playbook" --version >/dev/null 2>&1 || ! cmp -s "$repo/ansible/requirements.txt" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$repo/ansible/requirements.txt"
    cp "$repo/ansible/requirements.txt" "$venv/requirements.txt"
fi
export PATH="$venv/bin:$PATH"
