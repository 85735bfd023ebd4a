# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Sourced by fetch-kernel.sh and kernel-lint.sh, with APT set to the private apt folder of
# the shared cache: the apt-get options that use only that folder's sources.list, lists
# and cache, never the system's.
# shellcheck disable=SC2034 # used by the scripts that source this
APT_OPTS=(
	-o "Dir::Etc::SourceList=$APT/sources.list"
	-o "Dir::Etc::SourceParts=/dev/null"
	-o "Dir::Etc::Preferences=/dev/null"
	-o "Dir::Etc::PreferencesParts=/dev/null"
	-o "Dir::State::Lists=$APT/lists"
	-o "Dir::State::status=/dev/null"
	-o "Dir::Cache=$APT/cache"
	-o "APT::Sandbox::User=root"
	-o "Debug::NoLocking=1"
)
