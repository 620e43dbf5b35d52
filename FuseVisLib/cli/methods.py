"""fusevis methods: the registered fusion methods with their radius, weights and model card."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("methods", help="list the fusion methods")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run)


def describe_methods() -> list[dict]:
    from ..registry import get_method, method_names
    from ..weights import read_model_card

    described = []
    for name in method_names():
        method = get_method(name)
        weights = method.weights_file
        described.append(
            {
                "name": name,
                "description": method.description,
                "parameters": method.parameter_count(),
                "receptive_radius": method.receptive_radius,
                "weights_file": str(weights) if weights else None,
                "weights_present": bool(weights and weights.is_file()),
                "model_card": read_model_card(weights),
            }
        )
    return described


def run(args) -> int:
    from . import print_json

    described = describe_methods()
    if args.json:
        print_json(described)
        return 0
    # Imported methods are named "<network>@<checkpoint>", often longer than the built-in names.
    name_width = max([22, *(len(entry["name"]) for entry in described)])
    for entry in described:
        weights = "no weights needed" if entry["weights_file"] is None else ("trained" if entry["weights_present"] else "WEIGHTS MISSING")
        print(f"{entry['name']:<{name_width}} {entry['parameters']:>9,} parameters  radius {entry['receptive_radius']!s:>4}  {weights}")
    return 0
