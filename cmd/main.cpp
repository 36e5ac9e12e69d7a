// acmetool's entry point: registers every subcommand, parses, runs, and maps errors to exit codes.
// This is the only place that catches exceptions for the user (STYLE.md §4).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iostream>

#include "acmetool/acme/error.h"
#include "acmetool/caddyfile/error.h"
#include "acmetool/pki/error.h"
#include "common.h"

namespace acmetool::cmd {
namespace {

void add_global_flags(CLI::App& app, Context& ctx) {
  app.add_option("--storage", ctx.global.storage,
                 "Storage directory (default: $ACMETOOL_STORAGE, else $XDG_DATA_HOME/acmetool, "
                 "else ~/.local/share/acmetool)")
      ->type_name("DIR");
  app.add_flag("--json", ctx.global.json, "Print results as one JSON document on stdout");
  app.add_flag("-v,--verbose", ctx.global.verbosity, "More diagnostics on stderr (repeatable)");
  app.add_flag("-q,--quiet", ctx.global.quiet, "Print errors only");
}

// Prints every visible command path and its flags, one per line ("ca init\t--name"), so tests can
// check that man pages and completions cover the whole interface. Hidden from --help.
void print_interface(const CLI::App& app, const std::string& path) {
  std::cout << path << '\n';
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_snames()) std::cout << path << "\t-" << name << '\n';
    for (const std::string& name : option->get_lnames()) std::cout << path << "\t--" << name << '\n';
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); })) {
    print_interface(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name());
  }
}

void add_interface_dump(CLI::App& app) {
  CLI::App* dump = app.add_subcommand("__interface", "")->group("");
  dump->callback([&app] { print_interface(app, ""); });
}

// "acmetool ca issue": the deepest subcommand the parser reached, for "see '... --help'" hints.
std::string command_path(const CLI::App& app) {
  std::string path = "acmetool";
  for (const CLI::App* current = &app; !current->get_subcommands().empty();) {
    current = current->get_subcommands().front();
    path += " " + current->get_name();
  }
  return path;
}

int fail(int code, const std::string& message) {
  std::cerr << "acmetool: " << message << '\n';
  return code;
}

int run(int argc, char** argv) {
  Context ctx;
  CLI::App app{"acmetool: automatic HTTPS from the command line", "acmetool"};
  app.set_version_flag("--version", ACMETOOL_VERSION);
  app.fallthrough();  // global flags also work after the subcommand: `acmetool certs --json`
  app.require_subcommand(1);
  add_global_flags(app, ctx);

  add_obtain(app, ctx);
  add_renew(app, ctx);
  add_revoke(app, ctx);
  add_account(app, ctx);
  add_certs(app, ctx);
  add_ca(app, ctx);
  add_trust(app, ctx);
  add_untrust(app, ctx);
  add_qualify(app, ctx);
  add_fmt(app, ctx);
  add_validate(app, ctx);
  add_adapt(app, ctx);
  add_serve(app, ctx);
  add_version(app, ctx);
  add_interface_dump(app);

  try {
    app.parse(argc, argv);
    return ctx.exit_code;
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    // CLI11 uses codes of 100 and more; every parse error is a usage error for us.
    return fail(kExitUsage, std::string(e.what()) + " (see '" + command_path(app) + " --help')");
  } catch (const UsageError& e) {
    return fail(kExitUsage, e.what());
  } catch (const caddyfile::ParseError& e) {
    return fail(kExitUsage, e.what());
  } catch (const NotImplementedError& e) {
    return fail(kExitFailed, e.what());
  } catch (const std::exception& e) {
    return fail(kExitFailed, e.what());
  }
}

}  // namespace
}  // namespace acmetool::cmd

int main(int argc, char** argv) {
  const int code = acmetool::cmd::run(argc, argv);
  std::fflush(stdout);
  return code;
}
