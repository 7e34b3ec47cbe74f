"""Every value the chart's values.yaml sets is described by values.schema.json:
a key at a level whose schema lists `properties` must be one of them (a map of
free-form entries, like podLabels, declares `additionalProperties` instead).
Without this a schema with an open object would accept any value there and
document none. Usage:

  check_values_schema.py values.yaml values.schema.json [--self-test]

--self-test also adds an undescribed value and fails unless it is reported.
"""

import copy
import json
import sys

import yaml


def resolve(schema, node):
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def undescribed(values, schema, node=None, path=""):
    node = resolve(schema, node if node is not None else schema)
    missing = []
    if not isinstance(values, dict) or "properties" not in node:
        return missing
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key in node["properties"]:
            missing += undescribed(value, schema, node["properties"][key], where)
        elif not isinstance(node.get("additionalProperties"), dict):
            missing.append(where)
    return missing


def main():
    values = yaml.safe_load(open(sys.argv[1]))
    schema = json.load(open(sys.argv[2]))
    missing = undescribed(values, schema)
    if missing:
        sys.exit(f"ERROR {sys.argv[2]}: values.yaml sets values the schema does not describe: {', '.join(missing)}")
    if "--self-test" in sys.argv:
        broken = copy.deepcopy(values)
        broken["podSecurityContext"]["undescribedValue"] = 1
        if undescribed(broken, schema) != ["podSecurityContext.undescribedValue"]:
            sys.exit("ERROR check_values_schema.py: an undescribed value was not reported")
    print(f"ok   {sys.argv[1]}: every value is described by {sys.argv[2]}")


if __name__ == "__main__":
    main()
