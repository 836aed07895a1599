{
  "targets": [
    {
      "target_name": "weft_netns",
      "sources": ["netns.c", "rtnl.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
