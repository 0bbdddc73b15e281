# Sourced by the other scripts: installs the Debian packages dskit's build needs
# when they are missing (as root), or says exactly what to install.
# Usage: dskit_setup <extra debian packages...>
dskit_setup() {
    local base=(cmake make g++ libeigen3-dev libxsimd-dev nlohmann-json3-dev)
    local want=("${base[@]}" "$@") missing=() p
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "dskit: not a Debian-based system; make sure these (or their equivalents) are installed: ${want[*]}"
        return 0
    fi
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "dskit: missing Debian packages: ${missing[*]}" >&2
        echo "dskit: run this script as root, or first: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "dskit: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

dskit_jobs() { nproc 2>/dev/null || echo 2; }
