"""The hello service's own code; the generated code is in gen/."""
