// Commands that trip one login shell or another when sent as they are (quotes, `!`, newlines, `$`,
// backquotes, `%`, backslashes, UTF-8, heredocs, exit codes, stdin, a tar stream), for checking that
// every command reaches bash intact. `portable` ones print the same for any user on any host.

export interface HostileCommand {
  cmd: string;
  input?: string;
  portable: boolean;
}

/** `tarDir` holds a file `a.txt` for the `exec tar` case. */
export function hostileCommands(tarDir: string): HostileCommand[] {
  const p = (cmd: string, input?: string): HostileCommand => ({ cmd, portable: true, ...(input === undefined ? {} : { input }) });
  const local = (cmd: string): HostileCommand => ({ cmd, portable: false });
  return [
    p('echo plain'),
    p(`echo 'single' "double" \`echo back\` $(echo dollar-paren)`),
    p(`echo "it's" 'a'\\''b' "q'q"`),
    p('echo hi!; x=1; echo "!x" \'!x\' !x; echo !!; echo a!b'),
    local('printf \'%s\\n\' "$(id -un)" "$HOME" \'$HOME\' "${HOME}x"; echo "$(id -un)" $$ > /dev/null'),
    p('echo 100% done; printf \'%d%%\\n\' 5; echo %1 %%'),
    p("echo 'héllo wörld ✓ 日本' \"ü\""),
    p('for i in 1 2 3; do\n  echo "n=$i"\ndone\necho after'),
    p("printf 'a\\tb\\n'; echo 'back\\slash' \"\\$HOME\" end\\\\"),
    p('echo trailing\\\\'),
    p("cat <<'EOF'\nline 1 $x `y` !z\n  indented\\\nEOF\ncat <<EOF\n$((6 * 7))\nEOF"),
    p('printf "tab\there\\n"'),
    local('echo ~ {a,b} /dev/nul? [n]one; true && echo and || echo or; echo x | cat'),
    p('set x = 1; echo "$1 $2 $3"; setenv() { echo "fn $1"; }; setenv A'),
    p('echo $0'),
    p('exit 7'),
    p('false'),
    p('(exit 3); echo "status $?"'),
    p('if then fi'),
    p('echo "unterminated'),
    p('kill -TERM $$; echo not reached'),
    p('tr a-z A-Z', 'from stdin\n'),
    p('read -r x; echo "got [$x]"; cat', "first 'line' !\nrest\n"),
    local(`cd '${tarDir.replace(/'/g, `'\\''`)}' && exec tar -cf - a.txt`),
    p(`echo ${'x'.repeat(60_000)} | wc -c`),
    p(`${'echo "line!"\n'.repeat(2_000)}echo done | wc -l`),
  ];
}
