from modelport.cli import console_main

console_main()
